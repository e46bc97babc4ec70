//! Requests, identities and checks the fail-open tests share, in the harness
//! (`harness_fail_open.rs`) and in Envoy (`envoy_fail_open.rs`): the demo agents, MCP
//! `tools/call` bodies, a UTF-7 body that names another tool than it seems to, the issuers of
//! the SPIFFE-ID cases, and a look into a refusal's `reasons`.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::config::{issuer_entry, ConfigBuilder};
use crate::tokens::{Alg, TestIssuer};
use crate::{demo, Error};

/// research-bot's SPIFFE ID (`demo::agent("research-bot")`).
pub const RESEARCH: &str = "spiffe://demo.bridle.dev/agent/research-bot";
/// deploy-bot's SPIFFE ID (`demo::agent("deploy-bot")`).
pub const DEPLOY: &str = "spiffe://demo.bridle.dev/agent/deploy-bot";
/// deploy-bot's owner, as the tests' agent inventories record it.
pub const DEPLOY_OWNER: &str = "platform-team@demo.bridle.dev";
/// The header carrying Bridle's decision id, to the caller and to the upstream.
pub const DECISION_HEADER: &str = "x-bridle-decision-id";

/// A JSON-RPC `tools/call` (id 7) of `tool` with `arguments: {"id": "q3"}`, in UTF-8.
pub fn tools_call(tool: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
           "params": {"name": tool, "arguments": {"id": "q3"}}})
    .to_string()
}

/// A refusal body's `reasons` has one containing `fragment`.
pub fn has_reason(body: &Value, fragment: &str) -> bool {
    body.get("reasons")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|r| r.contains(fragment))
}

/// UTF-7 (RFC 2152) of `text`: characters outside the directly encoded set go as `+`, the
/// base64 of their UTF-16BE, `-`.
pub fn utf7(text: &str) -> String {
    let direct = |c: char| c.is_ascii_alphanumeric() || "'(),-./:? ".contains(c);
    let mut out = String::new();
    let mut run: Vec<u16> = Vec::new();
    let flush = |run: &mut Vec<u16>, out: &mut String| {
        if !run.is_empty() {
            let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('+');
            out.push_str(&STANDARD_NO_PAD.encode(bytes));
            out.push('-');
            run.clear();
        }
    };
    for c in text.chars() {
        if direct(c) {
            flush(&mut run, &mut out);
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Decodes UTF-7 as an upstream honouring `charset=utf-7` would (`+-` is a literal `+`);
/// `None` when a shifted run is not base64 or not UTF-16.
pub fn from_utf7(text: &str) -> Option<String> {
    let mut units: Vec<u16> = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '+' {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
            continue;
        }
        let mut b64 = String::new();
        while let Some(&next) = chars.peek() {
            if next.is_ascii_alphanumeric() || next == '+' || next == '/' {
                b64.push(next);
                chars.next();
            } else {
                break;
            }
        }
        if chars.peek() == Some(&'-') {
            chars.next();
        }
        if b64.is_empty() {
            units.push(u16::from(b'+'));
            continue;
        }
        let bytes = STANDARD_NO_PAD.decode(&b64).ok()?;
        units.extend(
            bytes
                .chunks_exact(2)
                .filter_map(|pair| <[u8; 2]>::try_from(pair).ok())
                .map(u16::from_be_bytes),
        );
    }
    String::from_utf16(&units).ok()
}

/// A `tools/call` of `read_report` whose `arguments.id`, read as UTF-7, closes the arguments
/// and names `deploy_service` as the tool (a JSON parser keeps the last `name`). Read as UTF-8
/// it is a harmless `read_report` call.
pub fn utf7_smuggling_body() -> Vec<u8> {
    let smuggled = utf7(r#"q3"},"name":"deploy_service","arguments":{"id":"q3"#);
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"read_report","arguments":{{"id":"{smuggled}"}}}}}}"#
    )
    .into_bytes()
}

/// The issuers of the SPIFFE-ID cases: only a JWT-SVID issuer, or an issuer the configuration
/// lets assert them (`spiffe_subjects: true`), gives a caller a SPIFFE ID.
pub struct SpiffeIssuers {
    /// The demo trust domain's JWT-SVID issuer ([`demo::ISSUER`]).
    pub svid: TestIssuer,
    /// An OIDC issuer: a `sub` that looks like a SPIFFE ID is just a name.
    pub plain_oidc: TestIssuer,
    /// An OIDC issuer the configuration lets assert SPIFFE IDs.
    pub trusted_oidc: TestIssuer,
}

impl SpiffeIssuers {
    /// Three fresh ES256 issuers.
    pub fn new() -> Result<Self, Error> {
        Ok(Self {
            svid: TestIssuer::new(demo::ISSUER, Alg::Es256)?,
            plain_oidc: TestIssuer::new("https://idp.demo.bridle.dev", Alg::Es256)?
                .with_profile("oidc"),
            trusted_oidc: TestIssuer::new("https://trusted-idp.demo.bridle.dev", Alg::Es256)?
                .with_profile("oidc"),
        })
    }

    /// `config` built trusting the three issuers after any it has, in this order (so
    /// `issuers[0]` to `issuers[2]` of a builder without issuers); the entry of
    /// [`trusted_oidc`](Self::trusted_oidc) has `spiffe_subjects: true`.
    pub fn config(&self, config: ConfigBuilder) -> Result<Value, Error> {
        let mut trusted = issuer_entry(&self.trusted_oidc)?;
        if let Some(entry) = trusted.as_object_mut() {
            entry.insert("spiffe_subjects".to_owned(), Value::Bool(true));
        }
        let mut config = config.issuer(&self.svid)?.issuer(&self.plain_oidc)?.build();
        if let Some(issuers) = config.get_mut("issuers").and_then(Value::as_array_mut) {
            issuers.push(trusted);
        }
        Ok(config)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn the_agents_are_the_demo_agents() {
        assert_eq!(RESEARCH, demo::agent("research-bot"));
        assert_eq!(DEPLOY, demo::agent("deploy-bot"));
    }

    #[test]
    fn utf7_round_trips() {
        for text in ["plain", r#"q3"},"name":"x""#, "a+b", "ünï €", "🦀 and more"] {
            assert_eq!(from_utf7(&utf7(text)).as_deref(), Some(text), "{text}");
        }
        assert_eq!(from_utf7("1 +- 1").as_deref(), Some("1 + 1"));
        assert_eq!(from_utf7("+2D0-"), None, "a lone surrogate is not UTF-16");
    }

    #[test]
    fn the_smuggling_body_names_another_tool_only_as_utf7() {
        let body = String::from_utf8(utf7_smuggling_body()).unwrap();
        assert!(body.contains("+ACIAfQ-,+ACI-name+ACI-:+ACI-deploy+AF8-service"));
        let as_utf8: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(as_utf8["params"]["name"], "read_report");
        assert!(!body.contains("deploy_service"));
        let as_utf7: Value = serde_json::from_str(&from_utf7(&body).unwrap()).unwrap();
        assert_eq!(as_utf7["params"]["name"], "deploy_service");
    }

    #[test]
    fn only_the_trusted_oidc_issuer_asserts_spiffe_subjects() {
        let issuers = SpiffeIssuers::new().unwrap();
        let config = issuers
            .config(ConfigBuilder::with_policy(json!({})))
            .unwrap();
        let entries = config["issuers"].as_array().unwrap();
        let named: Vec<(&str, bool)> = entries
            .iter()
            .map(|e| {
                let subjects = e.get("spiffe_subjects").is_some_and(|v| v == true);
                (e["issuer"].as_str().unwrap(), subjects)
            })
            .collect();
        assert_eq!(
            named,
            [
                (issuers.svid.iss.as_str(), false),
                (issuers.plain_oidc.iss.as_str(), false),
                (issuers.trusted_oidc.iss.as_str(), true),
            ]
        );
    }

    #[test]
    fn has_reason_looks_into_every_reason() {
        let body = json!({"reasons": ["first", "the `;` one"]});
        assert!(has_reason(&body, "`;`"));
        assert!(!has_reason(&body, "missing"));
        assert!(!has_reason(&json!({}), ""));
    }
}
