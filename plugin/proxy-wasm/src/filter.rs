//! The per-request filter: collect the request view, decide, enforce.

use std::cell::RefCell;
use std::rc::Rc;

use bridle_core::body::{self, AtHeaders, Delivery, HeldResponse, OnBody, OnResponseBody, Waiting};
use bridle_core::metrics;
use bridle_core::tools_list::{ToolsListFilter, Unfiltered};
use bridle_core::{Authorizer, Capabilities, ConnectionFacts, Decision, HostRefusal, RequestView};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

use crate::audit::AuditOutputs;
use crate::capabilities::{self, HostKind};
use crate::host::{log, ProxyHost};
use crate::metrics::Metrics;

/// A request whose decision waits for its body.
struct Pending {
    view: RequestView,
    body: Waiting,
}

pub struct BridleFilter {
    authorizer: Option<Rc<RefCell<Authorizer>>>,
    metrics: Rc<Metrics>,
    audit: Rc<AuditOutputs>,
    pending: Option<Pending>,
    /// Headers for the upstream's response once the request was allowed.
    response_headers: Vec<(String, String)>,
    /// Set for an allowed MCP `tools/list`: the response body is filtered.
    tools_filter: Option<ToolsListFilter>,
    response_content_type: String,
    held_response: HeldResponse,
    /// The rest of a response that could not be filtered is dropped.
    drop_response: bool,
}

const UNAVAILABLE: &[u8] =
    br#"{"error":"unavailable","reasons":["bridle has no usable configuration"]}"#;

impl BridleFilter {
    pub fn new(
        authorizer: Option<Rc<RefCell<Authorizer>>>,
        metrics: Rc<Metrics>,
        audit: Rc<AuditOutputs>,
    ) -> Self {
        Self {
            authorizer,
            metrics,
            audit,
            pending: None,
            response_headers: Vec::new(),
            tools_filter: None,
            response_content_type: String::new(),
            held_response: HeldResponse::default(),
            drop_response: false,
        }
    }

    fn request_view(&self, peer_uri_san: bool, host_proof: Option<&[String]>) -> RequestView {
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
        if let Some(path) = host_proof {
            // Present and non-empty only when the host verified a token in this request.
            view.host_verified = self
                .get_property(path.iter().map(String::as_str).collect())
                .is_some_and(|v| !v.is_empty());
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

    fn unavailable(&self, why: &str) -> Action {
        log(LogLevel::Error, &format!("bridle: {why}; refusing request"));
        self.send_http_response(
            503,
            vec![("content-type", "application/json")],
            Some(UNAVAILABLE),
        );
        Action::Pause
    }

    /// A refusal this adapter must make before the core can decide, decided and audited by
    /// the core like any other.
    fn refuse(&mut self, view: &RequestView, refusal: HostRefusal) -> Action {
        match self.with_host(|a, h| a.refuse(view, refusal, h)) {
            Some(decision) => self.enforce(decision),
            None => self.unavailable("authorizer unavailable"),
        }
    }

    /// Runs `f` with the authorizer borrowed; `None` when there is none or it is in use.
    fn with_authorizer<T>(&self, f: impl FnOnce(&mut Authorizer) -> T) -> Option<T> {
        let authorizer = self.authorizer.as_ref()?;
        let mut authorizer = authorizer.try_borrow_mut().ok()?;
        Some(f(&mut authorizer))
    }

    /// Runs `f` with the authorizer and this host's core services.
    fn with_host<T>(&self, f: impl FnOnce(&mut Authorizer, &mut ProxyHost) -> T) -> Option<T> {
        let mut host = ProxyHost {
            audit: Rc::clone(&self.audit),
        };
        self.with_authorizer(|a| f(a, &mut host))
    }

    /// Decides a request that waited for its body, now that the host holds all of it.
    fn decide_on_body(&mut self, oversized: bool) -> Action {
        let Some(mut pending) = self.pending.take() else {
            return Action::Pause;
        };
        let Waiting { limit, buffered } = pending.body;
        let decision = if oversized {
            self.with_host(|a, h| a.refuse_oversized(&pending.view, limit, h))
        } else {
            pending.view.body = Some(self.get_http_request_body(0, buffered).unwrap_or_default());
            self.with_host(|a, h| a.decide(&pending.view, h))
        };
        self.finish(decision)
    }

    fn finish(&mut self, decision: Option<Decision>) -> Action {
        match decision {
            Some(decision) => self.enforce(decision),
            None => self.unavailable("authorizer unavailable"),
        }
    }

    /// Replaces a whole `tools/list` response body held by the host with its filtered form.
    fn filter_response(&mut self, body_size: usize) {
        let Some(filter) = self.tools_filter.take() else {
            return;
        };
        let body = self
            .get_http_response_body(0, body_size)
            .unwrap_or_default();
        let content_type = std::mem::take(&mut self.response_content_type);
        let filtered = self.with_authorizer(|a| a.filter_tools_list(&filter, &body, &content_type));
        match filtered {
            Some(filtered) => self.set_http_response_body(0, body_size, &filtered),
            // Without the authorizer the list cannot be filtered; show no tools rather than all.
            None => self.set_http_response_body(0, body_size, &Unfiltered::NoAuthorizer.body()),
        };
    }

    fn enforce(&mut self, decision: Decision) -> Action {
        self.metrics.apply(metrics::of_decision(&decision));
        // Only where the host has filter state: elsewhere the call would trap the VM (Kong is
        // refused `audit.filter_state` by capability, and this refusal goes through here).
        if capabilities::host_kind().capabilities().filter_state
            && self
                .with_authorizer(|a| a.audit_settings().filter_state)
                .unwrap_or(false)
        {
            // Envoy keeps it as filter state `wasm.bridle_decision` for the access log.
            self.set_property(
                vec!["bridle_decision"],
                Some(decision.audit.to_json().as_bytes()),
            );
        }
        if !decision.forwards() {
            let body = decision.refusal_body();
            let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
            headers.extend(
                decision
                    .response_headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str())),
            );
            self.send_http_response(u32::from(decision.status()), headers, Some(body.as_bytes()));
            return Action::Pause;
        }
        // ngx_wasm_module (0.6.0 in nginx 1.22.1) only marks a removed header, and nginx's
        // proxy module still sends it upstream: empty the value first, so what goes upstream
        // at worst is an empty header, never the credential.
        let marks_removed = capabilities::host_kind() == HostKind::Nginx;
        for name in &decision.remove_headers {
            if marks_removed {
                self.set_http_request_header(name, Some(""));
            }
            self.set_http_request_header(name, None);
        }
        // Replace, not add: a caller must not be able to smuggle in its own copy of a header
        // that the policy or Bridle sets.
        for (name, value) in &decision.upstream_headers {
            self.set_http_request_header(name, Some(value));
        }
        self.response_headers = decision.response_headers;
        self.tools_filter = decision.tools_filter;
        Action::Continue
    }
}

impl Context for BridleFilter {}

impl HttpContext for BridleFilter {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let host = capabilities::host_kind();
        let Some((peer_uri_san, host_proof, unsupported)) = self.with_authorizer(|a| {
            let settings = a.settings();
            (
                settings.peer_uri_san,
                settings.host_proof_property.clone(),
                // The root refused what Envoy cannot honour at load; only another host, known
                // from its first request, has something left to refuse.
                (host != HostKind::Envoy)
                    .then(|| host.capabilities().check(a).err())
                    .flatten(),
            )
        }) else {
            return self.unavailable("no usable configuration");
        };
        if let Some(err) = unsupported {
            log(
                LogLevel::Error,
                &format!("bridle: {err}; refusing requests"),
            );
            // Without the host facts the configuration asks for: this host may not have them
            // (the SDK panics on a property call the host refuses).
            let view = self.request_view(false, None);
            return self.refuse(&view, HostRefusal::Unsupported(err));
        }
        let mut view = self.request_view(peer_uri_san, host_proof.as_deref());
        let Some(limit) = self.with_authorizer(|a| a.body_limit(&view)) else {
            return self.unavailable("authorizer unavailable");
        };
        let delivery = match host {
            HostKind::Envoy => Delivery::HoldsAtHeaders,
            HostKind::Nginx => Delivery::AfterHeaders,
        };
        // Two host calls only for a request whose decision reads its body.
        let (length, chunked) = match limit {
            Some(_) => (
                self.get_http_request_header("content-length"),
                self.get_http_request_header("transfer-encoding").is_some(),
            ),
            None => (None, false),
        };
        let decision =
            match body::at_headers(limit, end_of_stream, length.as_deref(), chunked, delivery) {
                AtHeaders::Decide { with_body } => {
                    view.body = with_body.then(Vec::new);
                    self.with_host(|a, h| a.decide(&view, h))
                }
                AtHeaders::Oversized => {
                    self.with_host(|a, h| a.refuse_oversized(&view, limit.unwrap_or_default(), h))
                }
                AtHeaders::Wait { hold } => {
                    let body = Waiting::new(limit.unwrap_or_default());
                    self.pending = Some(Pending { view, body });
                    // ngx_wasm_module never delivers a body to a filter that holds the headers
                    // (the request would hang): it reads the whole body before anything goes
                    // upstream and then runs the body step.
                    return if hold {
                        Action::Pause
                    } else {
                        Action::Continue
                    };
                }
                AtHeaders::LengthRequired => {
                    let refusal = HostRefusal::LengthRequired {
                        host: Capabilities::KONG.host,
                    };
                    return self.refuse(&view, refusal);
                }
            };
        self.finish(decision)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(pending) = self.pending.as_mut() else {
            return Action::Continue;
        };
        // The host accumulates the body until the end of the stream (or the trailers, which
        // end it too).
        match pending.body.on_body(body_size, end_of_stream) {
            OnBody::Wait => Action::Pause,
            OnBody::Decide => self.decide_on_body(false),
            OnBody::Oversized => self.decide_on_body(true),
        }
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // Trailers end the stream without a body callback that says so: a request still
        // waiting for its decision is decided here, on what the host buffered. Returning
        // `Continue` undecided would forward it unchecked.
        match self.pending.as_ref() {
            Some(pending) => self.decide_on_body(pending.body.buffered > pending.body.limit),
            None => Action::Continue,
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for (name, value) in std::mem::take(&mut self.response_headers) {
            self.set_http_response_header(&name, Some(&value));
        }
        if self.tools_filter.is_some() {
            self.response_content_type = self
                .get_http_response_header("content-type")
                .unwrap_or_default();
            // The filtered body is shorter; the host recomputes framing without this.
            self.set_http_response_header("content-length", None);
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.drop_response {
            self.set_http_response_body(0, body_size, b"");
            return Action::Continue;
        }
        if self.tools_filter.is_none() {
            return Action::Continue;
        }
        let keeps_whole_body = capabilities::host_kind() == HostKind::Envoy;
        match self
            .held_response
            .on_body(body_size, end_of_stream, keeps_whole_body)
        {
            OnResponseBody::Hold => Action::Pause,
            OnResponseBody::Filter(size) => {
                self.filter_response(size);
                Action::Continue
            }
            OnResponseBody::TooLarge => {
                // ngx_wasm_module's response buffers are full: it hands over part of the body
                // and will not hold the rest. Unfiltered tools must not reach the caller.
                log(
                    LogLevel::Error,
                    "bridle: tools/list response is larger than the host's response buffers \
                     (nginx_http_wasm_response_body_buffers); replaced by an error",
                );
                self.tools_filter = None;
                self.drop_response = true;
                self.set_http_response_body(0, body_size, &Unfiltered::TooLarge.body());
                Action::Continue
            }
        }
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        // Trailers end a held `tools/list` response: filter what the host buffered, or the
        // unfiltered list would go out with them.
        self.filter_response(self.held_response.buffered);
        Action::Continue
    }
}
