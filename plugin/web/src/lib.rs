//! Bridle for edge workers and browsers: the same decision core behind a wasm-bindgen API.
//!
//! The JavaScript side (`edge/bridle.mjs`) turns a Web `Request` into the JSON request view,
//! supplies the runtime's clock and Web Crypto randomness, and gets a tagged answer back:
//! `{decision, status, reasons, headers, audit, …}` or `{error}`, never a bare string.

use bridle_core::{
    AuditEvent, AuditSink, Clock, ConnectionFacts, Decision, MemoryOnceStore, Once, OnceStore,
    RequestView,
};
use serde::Deserialize;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

/// The request view as the JavaScript glue sends it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebRequest {
    method: String,
    #[serde(default)]
    scheme: String,
    #[serde(default)]
    authority: String,
    path: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    peer_uri_san: Option<String>,
}

impl From<WebRequest> for RequestView {
    fn from(request: WebRequest) -> Self {
        RequestView {
            method: request.method.to_ascii_uppercase(),
            scheme: request.scheme,
            authority: request.authority,
            path: request.path,
            headers: request
                .headers
                .into_iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value.into_bytes()))
                .collect(),
            body: request.body.map(String::into_bytes),
            connection: ConnectionFacts {
                peer_uri_san: request.peer_uri_san,
            },
            // Edge runtimes have no host verifier in front of Bridle.
            host_verified: false,
        }
    }
}

/// Clock from the runtime, audit events kept for the answer, approvals single-use within this
/// isolate (a worker isolate is one process; cross-isolate replay protection needs a shared
/// store such as a Durable Object, which this build does not assume).
struct WebHost {
    now_ms: f64,
    events: Vec<Value>,
    once: MemoryOnceStore,
}

impl Clock for WebHost {
    fn now_unix_nanos(&self) -> u64 {
        if self.now_ms.is_finite() && self.now_ms > 0.0 {
            // Milliseconds since the epoch fit f64 exactly; the cast cannot overflow u64.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let ms = self.now_ms as u64;
            ms.saturating_mul(1_000_000)
        } else {
            0
        }
    }
}

impl AuditSink for WebHost {
    fn record(&mut self, event: &AuditEvent) {
        self.events
            .push(serde_json::to_value(event).unwrap_or(Value::Null));
    }
}

impl OnceStore for WebHost {
    fn use_once(&mut self, key: &str, expires_at: u64, now: u64) -> Once {
        self.once.use_once(key, expires_at, now)
    }
}

#[wasm_bindgen]
pub struct Authorizer {
    inner: bridle_core::Authorizer,
    host: WebHost,
}

fn error(message: impl Into<String>) -> String {
    json!({"error": {"message": message.into()}}).to_string()
}

#[wasm_bindgen]
impl Authorizer {
    /// Compiles the same configuration JSON the proxy-wasm filter takes. A bad configuration
    /// throws an `Error` whose message names the field.
    #[wasm_bindgen(constructor)]
    pub fn new(config_json: &str, seed_hi: u32, seed_lo: u32) -> Result<Authorizer, JsError> {
        let seed = (u64::from(seed_hi) << 32) | u64::from(seed_lo);
        // Nothing runs between requests here and nothing verifies tokens in front of Bridle:
        // a bundle, feed, collector or host verification is refused, naming the field.
        let inner = bridle_core::Authorizer::from_json_on(
            config_json.as_bytes(),
            seed,
            &bridle_core::Capabilities::EDGE,
        )
        .map_err(|err| JsError::new(&err.to_string()))?;
        Ok(Authorizer {
            inner,
            host: WebHost {
                now_ms: 0.0,
                events: Vec::new(),
                once: MemoryOnceStore::new(65_536),
            },
        })
    }

    /// How many body bytes the decision needs (`-1`: none, decide on headers).
    #[wasm_bindgen(js_name = bodyLimit)]
    pub fn body_limit(&self, method: &str, path: &str) -> f64 {
        let view = RequestView {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            ..RequestView::default()
        };
        self.inner
            .body_limit(&view)
            .map_or(-1.0, |limit| limit as f64)
    }

    /// Decides on one request (JSON request view, the runtime's clock in ms). Returns a JSON
    /// tagged answer: `{decision, status, forward, dry_run, reasons, decision_id, headers:
    /// {upstream, remove, response}, body, audit}` or `{error: {message}}`.
    pub fn decide(&mut self, request_json: &str, now_ms: f64) -> String {
        let request: WebRequest = match serde_json::from_str(request_json) {
            Ok(request) => request,
            Err(err) => return error(format!("request view is not valid: {err}")),
        };
        self.host.now_ms = now_ms;
        let decision = self
            .inner
            .decide(&RequestView::from(request), &mut self.host);
        self.answer(&decision)
    }

    /// The signature check this request's workload token needs, for Web Crypto: `null`, or
    /// `{alg, jwk, signing_input, signature}` with the key and algorithm the core chose after
    /// every other check of the token passed. Then call `decideWithSignature` with the
    /// verdict; on `null`, `decide`.
    #[wasm_bindgen(js_name = signatureJob)]
    pub fn signature_job(&mut self, request_json: &str, now_ms: f64) -> String {
        let Ok(request) = serde_json::from_str::<WebRequest>(request_json) else {
            return "null".to_owned();
        };
        self.host.now_ms = now_ms;
        let now = self.host.now_unix_nanos() / 1_000_000_000;
        let job = self.inner.signature_job(&RequestView::from(request), now);
        serde_json::to_string(&job).unwrap_or_else(|_| "null".to_owned())
    }

    /// [`Authorizer::decide`] with Web Crypto's verdict on the signature `signatureJob` asked
    /// for. A verdict for any other token is ignored and the core verifies the signature.
    #[wasm_bindgen(js_name = decideWithSignature)]
    pub fn decide_with_signature(
        &mut self,
        request_json: &str,
        valid: bool,
        now_ms: f64,
    ) -> String {
        let request: WebRequest = match serde_json::from_str(request_json) {
            Ok(request) => request,
            Err(err) => return error(format!("request view is not valid: {err}")),
        };
        self.host.now_ms = now_ms;
        let decision =
            self.inner
                .decide_with_signature(&RequestView::from(request), valid, &mut self.host);
        self.answer(&decision)
    }

    /// The refusal for a body over [`Authorizer::body_limit`], audited like any decision.
    #[wasm_bindgen(js_name = refuseOversized)]
    pub fn refuse_oversized(&mut self, request_json: &str, limit: f64, now_ms: f64) -> String {
        let request: WebRequest = match serde_json::from_str(request_json) {
            Ok(request) => request,
            Err(err) => return error(format!("request view is not valid: {err}")),
        };
        self.host.now_ms = now_ms;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let limit = limit.max(0.0) as usize;
        let decision =
            self.inner
                .refuse_oversized(&RequestView::from(request), limit, &mut self.host);
        self.answer(&decision)
    }
}

impl Authorizer {
    /// The tagged answer for one decision, with the audit event it produced.
    fn answer(&mut self, decision: &Decision) -> String {
        let audit = self.host.events.pop().unwrap_or(Value::Null);
        self.host.events.clear();
        let forward = decision.forwards();
        let (upstream, remove) = if forward {
            (
                decision.upstream_headers.clone(),
                decision.remove_headers.clone(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        json!({
            "decision": decision.outcome.as_str(),
            "status": decision.status(),
            "forward": forward,
            "dry_run": decision.dry_run,
            "reasons": decision.reasons,
            "decision_id": decision.decision_id,
            "headers": {
                "upstream": upstream,
                "remove": remove,
                "response": decision.response_headers,
            },
            "body": if forward { Value::Null } else { Value::from(decision.refusal_body()) },
            "audit": audit,
        })
        .to_string()
    }
}
