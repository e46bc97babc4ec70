//! The per-request filter: collect the request view, decide, enforce.

use std::cell::RefCell;
use std::rc::Rc;

use bridle_core::{Authorizer, ConnectionFacts, Decision, RequestView};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

use crate::host::{log, LogAuditSink, ProxyClock};
use crate::metrics::Metrics;

pub struct BridleFilter {
    authorizer: Option<Rc<RefCell<Authorizer>>>,
    metrics: Rc<Metrics>,
    /// Headers for the upstream's response once the request was allowed.
    response_headers: Vec<(String, String)>,
}

impl BridleFilter {
    pub fn new(authorizer: Option<Rc<RefCell<Authorizer>>>, metrics: Rc<Metrics>) -> Self {
        Self {
            authorizer,
            metrics,
            response_headers: Vec::new(),
        }
    }

    fn request_view(&self, peer_uri_san: bool) -> RequestView {
        let mut view = RequestView::default();
        for (name, value) in self.get_http_request_headers_bytes() {
            let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                name.to_ascii_lowercase()
            } else {
                name
            };
            match name.as_str() {
                ":method" => view.method = String::from_utf8_lossy(&value).into_owned(),
                ":path" => view.path = String::from_utf8_lossy(&value).into_owned(),
                ":authority" => view.authority = String::from_utf8_lossy(&value).into_owned(),
                ":scheme" => view.scheme = String::from_utf8_lossy(&value).into_owned(),
                _ => view.headers.push((name, value)),
            }
        }
        if peer_uri_san {
            view.connection = ConnectionFacts {
                peer_uri_san: self
                    .get_property(vec!["connection", "uri_san_peer_certificate"])
                    .and_then(|v| String::from_utf8(v).ok())
                    .filter(|v| !v.is_empty()),
            };
        }
        view
    }

    fn refuse(&self, decision: &Decision) {
        let body = decision.refusal_body();
        let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
        headers.extend(
            decision
                .response_headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        );
        self.send_http_response(u32::from(decision.status()), headers, Some(body.as_bytes()));
    }
}

impl Context for BridleFilter {}

impl HttpContext for BridleFilter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(authorizer) = self.authorizer.clone() else {
            log(
                LogLevel::Error,
                "bridle: no valid configuration; refusing request",
            );
            self.send_http_response(
                503,
                vec![("content-type", "application/json")],
                Some(br#"{"error":"unavailable","reasons":["bridle has no valid configuration"]}"#),
            );
            return Action::Pause;
        };
        let Ok(mut authorizer) = authorizer.try_borrow_mut() else {
            log(
                LogLevel::Critical,
                "bridle: authorizer re-entered; refusing request",
            );
            self.send_http_response(
                503,
                vec![("content-type", "application/json")],
                Some(br#"{"error":"unavailable"}"#),
            );
            return Action::Pause;
        };
        let view = self.request_view(authorizer.settings().peer_uri_san);
        let decision = authorizer.decide(&view, &ProxyClock, &mut LogAuditSink);
        drop(authorizer);
        self.metrics.count(decision.outcome, decision.cache_hit);
        if !decision.is_allowed() {
            self.refuse(&decision);
            return Action::Pause;
        }
        for name in &decision.remove_headers {
            self.set_http_request_header(name, None);
        }
        // Replace, not add: a caller must not be able to smuggle in its own copy of a header
        // that the policy or Bridle sets.
        for (name, value) in &decision.upstream_headers {
            self.set_http_request_header(name, Some(value));
        }
        self.response_headers = decision.response_headers;
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for (name, value) in std::mem::take(&mut self.response_headers) {
            self.set_http_response_header(&name, Some(&value));
        }
        Action::Continue
    }
}
