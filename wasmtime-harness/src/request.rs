//! Requests tests send through a plugin, and what came out.

use std::collections::BTreeMap;

use crate::fmt::{Lossy, Pairs};
use crate::headers::Headers;

/// A downstream request, plus the response its upstream would give if the filter forwards it.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub authority: String,
    pub scheme: String,
    /// Regular headers in order; names are lower-cased when sent (values are bytes).
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The body as the filter receives it, one `proxy_on_request_body` call per chunk. Empty:
    /// no body (headers carry end of stream, unless trailers follow).
    pub body_chunks: Vec<Vec<u8>>,
    /// Request trailers (HTTP/2 trailers, or HTTP/1.1 chunked trailers): when not empty they
    /// end the stream after the body, so no body chunk carries end of stream (see
    /// [`Plugin::request`](crate::Plugin::request)).
    pub trailers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Add `content-length` (for a body set with [`HttpRequest::body`]) unless a
    /// `content-length` or `transfer-encoding` header is given, as an HTTP/1.1 client would.
    pub auto_content_length: bool,
    /// Properties only this request's context sees (e.g. the peer certificate's URI SAN),
    /// in addition to the plugin's.
    pub properties: BTreeMap<Vec<String>, Vec<u8>>,
    pub upstream_response: UpstreamResponse,
}

impl HttpRequest {
    /// A request with this method and path; authority `localhost`, scheme `http`, no body,
    /// upstream answering 200.
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            authority: "localhost".to_owned(),
            scheme: "http".to_owned(),
            headers: Vec::new(),
            body_chunks: Vec::new(),
            trailers: Vec::new(),
            auto_content_length: true,
            properties: BTreeMap::new(),
            upstream_response: UpstreamResponse::default(),
        }
    }

    /// `GET path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new("GET", path)
    }

    /// `POST path`.
    pub fn post(path: impl Into<String>) -> Self {
        Self::new("POST", path)
    }

    /// Sets the method.
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = method.into();
        self
    }

    /// Sets the path (with query).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Sets `:authority`.
    pub fn authority(mut self, authority: impl Into<String>) -> Self {
        self.authority = authority.into();
        self
    }

    /// Sets `:scheme`.
    pub fn scheme(mut self, scheme: impl Into<String>) -> Self {
        self.scheme = scheme.into();
        self
    }

    /// Adds a header (value may be any bytes).
    pub fn header(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        self.headers.push(pair(name, value));
        self
    }

    /// Sets the body, delivered in one chunk; `content-length` is added.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body_chunks = one_chunk(body.into());
        self.auto_content_length = true;
        self
    }

    /// Sets the body as separate chunks (a streamed upload: no `content-length` is added).
    pub fn body_chunks<B: Into<Vec<u8>>>(mut self, chunks: impl IntoIterator<Item = B>) -> Self {
        self.body_chunks = chunks.into_iter().map(Into::into).collect();
        self.auto_content_length = false;
        self
    }

    /// Adds a property only this request's context sees.
    pub fn property(mut self, path: &[&str], value: impl Into<Vec<u8>>) -> Self {
        self.properties
            .insert(path.iter().map(|s| (*s).to_owned()).collect(), value.into());
        self
    }

    /// Sets what the upstream answers if the request is forwarded.
    pub fn upstream_response(mut self, response: UpstreamResponse) -> Self {
        self.upstream_response = response;
        self
    }

    /// The request header map Envoy would give the filter: pseudo-headers first.
    pub fn header_map(&self) -> Headers {
        let mut h = Headers::new();
        h.add(b":method", self.method.as_bytes());
        h.add(b":path", self.path.as_bytes());
        h.add(b":authority", self.authority.as_bytes());
        h.add(b":scheme", self.scheme.as_bytes());
        for (name, value) in &self.headers {
            h.add(name, value);
        }
        let body_len: usize = self.body_chunks.iter().map(Vec::len).sum();
        if self.auto_content_length
            && body_len > 0
            && !h.contains("content-length")
            && !h.contains("transfer-encoding")
        {
            h.add(b"content-length", body_len.to_string().as_bytes());
        }
        h
    }
}

/// The upstream's answer to a forwarded request.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamResponse {
    pub status: u16,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The body, one `proxy_on_response_body` call per chunk; empty: no body.
    pub body_chunks: Vec<Vec<u8>>,
    /// Response trailers: when not empty they end the response after the body.
    pub trailers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Default for UpstreamResponse {
    fn default() -> Self {
        Self::new(200)
    }
}

impl UpstreamResponse {
    /// A response with this status, no headers, no body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body_chunks: Vec::new(),
            trailers: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        self.headers.push(pair(name, value));
        self
    }

    /// Sets the body, delivered in one chunk.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body_chunks = one_chunk(body.into());
        self
    }

    /// Sets the body as separate chunks.
    pub fn body_chunks<B: Into<Vec<u8>>>(mut self, chunks: impl IntoIterator<Item = B>) -> Self {
        self.body_chunks = chunks.into_iter().map(Into::into).collect();
        self
    }

    /// The whole body (all chunks).
    pub fn body_bytes(&self) -> Vec<u8> {
        self.body_chunks.concat()
    }

    /// The response header map: `:status` first.
    pub fn header_map(&self) -> Headers {
        response_headers(self.status, self.headers.iter().map(|(n, v)| (n, v)))
    }
}

/// The trailer builders of [`HttpRequest`] and [`UpstreamResponse`], one definition for both
/// (`$ty` has a `trailers` field of pairs), each method with its doc.
macro_rules! trailer_builders {
    ($ty:ident {
        trailer: $trailer:literal,
        trailers: $trailers:literal,
        trailer_map: $map:literal $(,)?
    }) => {
        impl $ty {
            #[doc = $trailer]
            pub fn trailer(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
                self.trailers.push(pair(name, value));
                self
            }

            #[doc = $trailers]
            pub fn trailers<N, V>(mut self, trailers: impl IntoIterator<Item = (N, V)>) -> Self
            where
                N: AsRef<[u8]>,
                V: AsRef<[u8]>,
            {
                self.trailers = pairs(trailers);
                self
            }

            #[doc = $map]
            pub fn trailer_map(&self) -> Headers {
                Headers::from_pairs(self.trailers.iter().map(|(n, v)| (n, v)))
            }
        }
    };
}

trailer_builders!(HttpRequest {
    trailer: "Adds a request trailer: the stream then ends with the trailers, not with the body.",
    trailers: "Sets the request trailers (an empty list: none, the stream ends with the body).",
    trailer_map: "The request trailer map as the filter receives it.",
});

trailer_builders!(UpstreamResponse {
    trailer: "Adds a response trailer: the response then ends with the trailers.",
    trailers: "Sets the response trailers.",
    trailer_map: "The response trailer map.",
});

/// A body set in one piece: one chunk, or none for an empty body.
fn one_chunk(body: Vec<u8>) -> Vec<Vec<u8>> {
    if body.is_empty() {
        Vec::new()
    } else {
        vec![body]
    }
}

fn pair(name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> (Vec<u8>, Vec<u8>) {
    (name.as_ref().to_vec(), value.as_ref().to_vec())
}

fn pairs<N: AsRef<[u8]>, V: AsRef<[u8]>>(
    pairs: impl IntoIterator<Item = (N, V)>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    pairs.into_iter().map(|(n, v)| pair(n, v)).collect()
}

pub(crate) fn response_headers<N: AsRef<[u8]>, V: AsRef<[u8]>>(
    status: u16,
    headers: impl IntoIterator<Item = (N, V)>,
) -> Headers {
    let mut h = Headers::new();
    h.add(b":status", status.to_string().as_bytes());
    for (name, value) in headers {
        h.add(name.as_ref(), value.as_ref());
    }
    h
}

/// What happened to a request that went through the filter.
#[derive(Clone, PartialEq, Eq)]
pub enum HttpOutcome {
    /// The filter let the request through; the upstream answered.
    Forwarded {
        /// The request headers as they went upstream (after the filter's changes).
        request_headers: Headers,
        /// The request body as it went upstream.
        request_body: Vec<u8>,
        /// The request trailers as they went upstream (empty: none went).
        request_trailers: Headers,
        /// The status the client got (`:status` after the filter's response callbacks).
        response_status: u16,
        /// The response headers the client got.
        response_headers: Headers,
        /// The response body the client got.
        response_body: Vec<u8>,
        /// The response trailers the client got (empty: none).
        response_trailers: Headers,
    },
    /// The filter answered itself (`proxy_send_local_response`); nothing went upstream. Like
    /// Envoy, the reply went through the filter's own response callbacks first, so `headers`
    /// and `body` are what the client got.
    LocalResponse {
        status: u16,
        headers: Headers,
        body: Vec<u8>,
        /// Envoy's response code details (white space replaced by `_`).
        details: String,
    },
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let chunks: Vec<Lossy<'_>> = self.body_chunks.iter().map(|c| Lossy(c)).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("authority", &self.authority)
            .field("scheme", &self.scheme)
            .field("headers", &Pairs(&self.headers))
            .field("body_chunks", &chunks)
            .field("trailers", &Pairs(&self.trailers))
            .field("auto_content_length", &self.auto_content_length)
            .field("properties", &self.properties)
            .field("upstream_response", &self.upstream_response)
            .finish()
    }
}

impl std::fmt::Debug for UpstreamResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let chunks: Vec<Lossy<'_>> = self.body_chunks.iter().map(|c| Lossy(c)).collect();
        f.debug_struct("UpstreamResponse")
            .field("status", &self.status)
            .field("headers", &Pairs(&self.headers))
            .field("body_chunks", &chunks)
            .field("trailers", &Pairs(&self.trailers))
            .finish()
    }
}

impl std::fmt::Debug for HttpOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Forwarded {
                request_headers,
                request_body,
                request_trailers,
                response_status,
                response_headers,
                response_body,
                response_trailers,
            } => f
                .debug_struct("Forwarded")
                .field("request_headers", request_headers)
                .field("request_body", &Lossy(request_body))
                .field("request_trailers", request_trailers)
                .field("response_status", response_status)
                .field("response_headers", response_headers)
                .field("response_body", &Lossy(response_body))
                .field("response_trailers", response_trailers)
                .finish(),
            Self::LocalResponse {
                status,
                headers,
                body,
                details,
            } => f
                .debug_struct("LocalResponse")
                .field("status", status)
                .field("headers", headers)
                .field("body", &Lossy(body))
                .field("details", details)
                .finish(),
        }
    }
}

impl HttpOutcome {
    /// The reply Envoy sends for a request whose filter failed (trap, timeout) under the
    /// default `failure_policy: FAIL_CLOSED`: `503`, empty body, details `wasm_fail_stream`.
    pub fn fail_closed() -> Self {
        Self::LocalResponse {
            status: 503,
            headers: response_headers::<&[u8], &[u8]>(503, []),
            body: Vec::new(),
            details: "wasm_fail_stream".to_owned(),
        }
    }

    /// The status the client got.
    pub fn status(&self) -> u16 {
        match self {
            Self::Forwarded {
                response_status, ..
            } => *response_status,
            Self::LocalResponse { status, .. } => *status,
        }
    }

    /// `true` if the request went upstream.
    pub fn is_forwarded(&self) -> bool {
        matches!(self, Self::Forwarded { .. })
    }

    /// `true` if the filter answered itself.
    pub fn is_local_response(&self) -> bool {
        matches!(self, Self::LocalResponse { .. })
    }

    /// The response headers the client got.
    pub fn headers(&self) -> &Headers {
        match self {
            Self::Forwarded {
                response_headers, ..
            } => response_headers,
            Self::LocalResponse { headers, .. } => headers,
        }
    }

    /// A response header the client got, as text (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers().header(name)
    }

    /// The response body the client got.
    pub fn body(&self) -> &[u8] {
        match self {
            Self::Forwarded { response_body, .. } => response_body,
            Self::LocalResponse { body, .. } => body,
        }
    }

    /// The response body as text (lossy UTF-8).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(self.body()).into_owned()
    }

    /// The response body parsed as JSON; `Value::Null` if it is not JSON (use
    /// [`HttpOutcome::try_body_json`] to see why).
    pub fn body_json(&self) -> serde_json::Value {
        self.try_body_json().unwrap_or(serde_json::Value::Null)
    }

    /// The response body parsed as JSON.
    pub fn try_body_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(self.body())
    }

    /// Request headers as they went upstream; `None` for a local response.
    pub fn upstream_headers(&self) -> Option<&Headers> {
        match self {
            Self::Forwarded {
                request_headers, ..
            } => Some(request_headers),
            Self::LocalResponse { .. } => None,
        }
    }

    /// A request header as it went upstream, as text (case-insensitive).
    pub fn upstream_header(&self, name: &str) -> Option<String> {
        self.upstream_headers()?.header(name)
    }

    /// The request body as it went upstream; `None` for a local response.
    pub fn upstream_body(&self) -> Option<&[u8]> {
        match self {
            Self::Forwarded { request_body, .. } => Some(request_body),
            Self::LocalResponse { .. } => None,
        }
    }

    /// Request trailers as they went upstream (empty if none went); `None` for a local
    /// response.
    pub fn upstream_trailers(&self) -> Option<&Headers> {
        match self {
            Self::Forwarded {
                request_trailers, ..
            } => Some(request_trailers),
            Self::LocalResponse { .. } => None,
        }
    }

    /// A request trailer as it went upstream, as text (case-insensitive).
    pub fn upstream_trailer(&self, name: &str) -> Option<String> {
        self.upstream_trailers()?.header(name)
    }

    /// The response trailers the client got (a local response has none).
    pub fn trailers(&self) -> &Headers {
        static NONE: Headers = Headers::new();
        match self {
            Self::Forwarded {
                response_trailers, ..
            } => response_trailers,
            Self::LocalResponse { .. } => &NONE,
        }
    }

    /// A response trailer the client got, as text (case-insensitive).
    pub fn trailer(&self, name: &str) -> Option<String> {
        self.trailers().header(name)
    }

    /// Response code details of a local response.
    pub fn details(&self) -> Option<&str> {
        match self {
            Self::Forwarded { .. } => None,
            Self::LocalResponse { details, .. } => Some(details),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_header_map_has_pseudo_headers_and_content_length() {
        let req = HttpRequest::post("/x?y=1")
            .authority("api.example")
            .header("X-Bin", [0xffu8, 0x00])
            .body(&b"{}"[..]);
        let h = req.header_map();
        assert_eq!(h.header(":method").as_deref(), Some("POST"));
        assert_eq!(h.header(":path").as_deref(), Some("/x?y=1"));
        assert_eq!(h.header(":authority").as_deref(), Some("api.example"));
        assert_eq!(h.header(":scheme").as_deref(), Some("http"));
        assert_eq!(h.get("x-bin"), Some(&[0xffu8, 0x00][..]));
        assert_eq!(h.header("content-length").as_deref(), Some("2"));

        let streamed = HttpRequest::post("/").body_chunks([&b"a"[..], b"b"]);
        assert!(!streamed.header_map().contains("content-length"));
        let explicit = HttpRequest::post("/")
            .header("content-length", "9")
            .body(&b"ab"[..]);
        assert_eq!(explicit.header_map().get_all("content-length").len(), 1);
        assert!(HttpRequest::get("/")
            .body(Vec::new())
            .body_chunks
            .is_empty());
    }

    #[test]
    fn outcome_helpers() {
        let out = HttpOutcome::LocalResponse {
            status: 403,
            headers: Headers::from_pairs([
                (":status", "403"),
                ("Content-Type", "application/json"),
            ]),
            body: br#"{"error":"denied"}"#.to_vec(),
            details: "x".to_owned(),
        };
        assert_eq!(out.status(), 403);
        assert!(out.is_local_response());
        assert_eq!(
            out.header("content-type").as_deref(),
            Some("application/json")
        );
        assert_eq!(out.body_json()["error"], "denied");
        assert!(out.upstream_header("x").is_none());
        assert_eq!(HttpOutcome::fail_closed().status(), 503);
        assert_eq!(
            HttpOutcome::fail_closed().details(),
            Some("wasm_fail_stream")
        );
    }
}
