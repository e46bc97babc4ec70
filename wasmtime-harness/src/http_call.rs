//! Outbound calls made with `proxy_http_call` and the responses tests give them.

use std::time::Duration;

use crate::fmt::Lossy;
use crate::headers::Headers;

/// A `proxy_http_call` the guest made and nobody answered yet.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpCall {
    /// The token the guest got back.
    pub token: u32,
    /// The cluster name.
    pub upstream: String,
    /// Request headers, pseudo-headers included (`:method`, `:path`, `:authority`).
    pub headers: Headers,
    pub body: Vec<u8>,
    pub trailers: Headers,
    /// `None` when the guest passed 0 (no timeout).
    pub timeout: Option<Duration>,
    /// The context that was current when the call was made. Envoy delivers the response
    /// through the root context and the SDK routes it to this one (or drops it if the context
    /// is gone).
    pub context_id: u32,
}

impl std::fmt::Debug for HttpCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCall")
            .field("token", &self.token)
            .field("upstream", &self.upstream)
            .field("headers", &self.headers)
            .field("body", &Lossy(&self.body))
            .field("trailers", &self.trailers)
            .field("timeout", &self.timeout)
            .field("context_id", &self.context_id)
            .finish()
    }
}

impl std::fmt::Debug for HttpCallResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCallResponse")
            .field("headers", &self.headers)
            .field("body", &Lossy(&self.body))
            .field("trailers", &self.trailers)
            .finish()
    }
}

impl HttpCall {
    /// A request header as text (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.header(name)
    }
}

/// A response to deliver to a pending [`HttpCall`].
#[derive(Clone, PartialEq, Eq)]
pub struct HttpCallResponse {
    /// Response headers, `:status` first.
    pub headers: Headers,
    pub body: Vec<u8>,
    pub trailers: Headers,
}

impl HttpCallResponse {
    /// A response with this status and no headers or body.
    pub fn new(status: u16) -> Self {
        let mut headers = Headers::new();
        headers.add(b":status", status.to_string().as_bytes());
        Self {
            headers,
            body: Vec::new(),
            trailers: Headers::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        self.headers.add(name.as_ref(), value.as_ref());
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Adds a trailer.
    pub fn trailer(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        self.trailers.add(name.as_ref(), value.as_ref());
        self
    }
}
