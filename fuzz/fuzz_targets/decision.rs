//! The whole decision on arbitrary requests: method, path, authority, headers and body from the
//! input, against a configuration with workload, task and approval issuers, an MCP route and a
//! policy that reads the request. The first input byte chooses whether a valid workload token
//! and a valid task token are added, so the policy and MCP paths are reached, not only the 401,
//! and whether the body is labelled JSON. Whatever is forwarded must be what the policy judged:
//! no `;` path parameters, an MCP body only as unencoded UTF-8 JSON, and no caller copy of a
//! reserved `x-bridle-` header.
#![no_main]

use bridle_core::RequestView;
use bridle_core::{AuditEvent, AuditSink, Authorizer, Clock, MemoryOnceStore, Once, OnceStore};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

const POLICY: &str = r#"package fuzz
import rego.v1
default decision := {"allow": false, "reasons": ["no"]}
decision := {"allow": true} if input.request.method in {"GET", "POST"}
decision := {"allow": false, "approval_required": true} if input.request.method == "PUT"
"#;

struct Host {
    once: MemoryOnceStore,
}

impl Clock for Host {
    fn now_unix_nanos(&self) -> u64 {
        common::NOW * 1_000_000_000
    }
}

impl AuditSink for Host {
    fn record(&mut self, event: &AuditEvent) {
        let _ = event.to_json();
    }
}

impl OnceStore for Host {
    fn use_once(&mut self, key: &str, expires_at: u64, now: u64) -> Once {
        self.once.use_once(key, expires_at, now)
    }
}

fn config() -> String {
    format!(
        r#"{{"issuers": [{fuzz}, {es}, {rs}],
            "task": {{"issuers": [{{"issuer": "https://txn.fuzz.test", "profile": "txn-token", "audiences": ["bridle-gateway"], "algorithms": ["ES256"], "jwks": {es_keys}}}]}},
            "approval": {{"issuers": [{{"issuer": "https://approvals.fuzz.test", "profile": "approval", "audiences": ["bridle-gateway"], "algorithms": ["ES256"], "jwks": {es_keys}}}]}},
            "routes": [{{"name": "mcp", "path": "/mcp", "methods": ["POST"], "protocol": "mcp"}},
                       {{"name": "tasks", "path": "/tasks/**", "require_task": true}}],
            "mcp": {{"max_body_bytes": 4096, "tools": {{"deploy": {{"action": "execute", "data_class": "infrastructure"}}}}}},
            "policy": {{"entrypoint": "data.fuzz.decision", "modules": [{{"name": "fuzz.rego", "source": {policy}}}], "data": {{}}}}}}"#,
        fuzz = common::FUZZ_ISSUER,
        es = common::ES256_ISSUER,
        rs = common::RS256_ISSUER,
        es_keys = serde_json::from_str::<serde_json::Value>(common::FUZZ_ISSUER)
            .map(|v| v["jwks"].to_string())
            .unwrap_or_default(),
        policy = serde_json::Value::String(POLICY.to_owned()),
    )
}

/// `method \n path \n authority \n (name: value \n)* \n body`; missing parts stay empty.
fn request(data: &[u8]) -> RequestView {
    let mut view = RequestView {
        scheme: "https".to_owned(),
        ..RequestView::default()
    };
    let mut rest = data;
    let line = |rest: &mut &[u8]| -> Option<Vec<u8>> {
        if rest.is_empty() {
            return None;
        }
        let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        let (head, tail) = rest.split_at(end);
        *rest = tail.get(1..).unwrap_or_default();
        Some(head.to_vec())
    };
    let text =
        |bytes: Option<Vec<u8>>| String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned();
    view.method = text(line(&mut rest));
    view.path = text(line(&mut rest));
    view.authority = text(line(&mut rest));
    while let Some(header) = line(&mut rest) {
        if header.is_empty() {
            break;
        }
        let at = header
            .iter()
            .position(|b| *b == b':')
            .unwrap_or(header.len());
        let (name, value) = header.split_at(at);
        view.headers.push((
            String::from_utf8_lossy(name).to_ascii_lowercase(),
            value.get(1..).unwrap_or_default().trim_ascii().to_vec(),
        ));
    }
    if !rest.is_empty() {
        view.body = Some(rest.to_vec());
    }
    view
}

fuzz_target!(|data: &[u8]| {
    thread_local! {
        static AUTHORIZER: std::cell::RefCell<Authorizer> = std::cell::RefCell::new(
            Authorizer::from_json(config().as_bytes(), 7).expect("fixture configuration loads"));
    }
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut view = request(rest);
    if selector & 1 == 1 {
        view.headers.push((
            "authorization".to_owned(),
            format!("Bearer {}", common::VALID_TOKEN).into_bytes(),
        ));
    }
    if selector & 2 == 2 {
        view.headers.push((
            "txn-token".to_owned(),
            common::TXN_TOKEN.as_bytes().to_vec(),
        ));
    }
    if selector & 4 == 4 {
        view.headers
            .push(("content-type".to_owned(), b"application/json".to_vec()));
    }
    let mut host = Host {
        once: MemoryOnceStore::new(64),
    };
    AUTHORIZER.with(|authorizer| {
        let mut authorizer = authorizer.borrow_mut();
        let _ = authorizer.body_limit(&view);
        let decision = authorizer.decide(&view, &mut host);
        // Whatever the request, a refusal is never forwarded and carries a status.
        let status = decision.outcome.status();
        assert!((200..600).contains(&status));
        if !decision.forwards() {
            return;
        }
        let path = view.path.split('?').next().unwrap_or_default();
        assert!(!path.contains(';') && !path.to_ascii_lowercase().contains("%3b"));
        for (name, _) in view.headers.iter().filter(|(n, _)| n.starts_with("x-bridle-")) {
            assert!(decision.remove_headers.contains(name), "{name} forwarded");
        }
        if view.method == "POST" && path == "/mcp" {
            let values = |name: &str| view.headers.iter().filter(|(n, _)| n == name).count();
            assert_eq!(values("content-type"), 1);
            assert!(view.headers.iter().all(|(n, v)| n != "content-encoding"
                || v.trim_ascii().is_empty()
                || v.trim_ascii().eq_ignore_ascii_case(b"identity")));
        }
    });
});
