//! Step-by-step control of one HTTP stream.

use crate::abi::Action;
use crate::error::HarnessError;
use crate::headers::Headers;
use crate::lifecycle::{status_of, Phase};
use crate::plugin::Plugin;
use crate::request::{response_headers, HttpOutcome, HttpRequest};
use crate::state::StreamState;

static NO_HEADERS: Headers = Headers::new();

/// One HTTP context, driven event by event (see [`Plugin::stream`]).
///
/// Dropping a stream that was not [finished](HttpStream::finish) still runs `on_log`,
/// `on_done` and `on_delete` (ignoring errors), as Envoy does when a stream goes away.
pub struct HttpStream<'p> {
    plugin: &'p mut Plugin,
    ctx: u32,
    finished: bool,
}

impl Plugin {
    /// Creates an HTTP context (`proxy_on_context_create`) to drive step by step.
    pub fn stream(&mut self) -> Result<HttpStream<'_>, HarnessError> {
        let ctx = self.open_stream(Default::default())?;
        Ok(HttpStream {
            plugin: self,
            ctx,
            finished: false,
        })
    }
}

impl<'p> HttpStream<'p> {
    fn state(&self) -> Option<&StreamState> {
        self.plugin.store.data().stream(self.ctx)
    }

    /// The context id of this stream.
    pub fn context_id(&self) -> u32 {
        self.ctx
    }

    /// The plugin (to answer http calls, move time, read logs) while the stream is open.
    pub fn plugin(&mut self) -> &mut Plugin {
        self.plugin
    }

    /// Sends the request headers of `req` (its pseudo-headers, headers and properties; not
    /// its body): `proxy_on_request_headers`.
    pub fn send_request_headers(
        &mut self,
        req: &HttpRequest,
        end_of_stream: bool,
    ) -> Result<Action, HarnessError> {
        if let Some(s) = self.plugin.store.data_mut().stream_mut(self.ctx) {
            s.properties
                .extend(req.properties.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        self.plugin
            .send_request_headers(self.ctx, req.header_map(), end_of_stream)
    }

    /// Sends a request body chunk: `proxy_on_request_body` with the buffered size.
    pub fn send_request_body(
        &mut self,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<Action, HarnessError> {
        self.plugin
            .send_request_body(self.ctx, chunk, end_of_stream)
    }

    /// Sends the request trailers, which end the request: `proxy_on_request_trailers` with
    /// their count (send the last body chunk with `end_of_stream = false` first, as Envoy
    /// does). Under [`HostProfile::Kong`](crate::HostProfile::Kong) the callback is never called:
    /// the trailers only end the body.
    pub fn send_request_trailers<N, V>(
        &mut self,
        trailers: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Action, HarnessError>
    where
        N: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.plugin
            .send_trailers(Phase::Request, self.ctx, Headers::from_pairs(trailers))
    }

    /// Sends the upstream's response headers (`:status` is added first):
    /// `proxy_on_response_headers`.
    pub fn send_response_headers<N, V>(
        &mut self,
        status: u16,
        headers: impl IntoIterator<Item = (N, V)>,
        end_of_stream: bool,
    ) -> Result<Action, HarnessError>
    where
        N: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.plugin.send_response_headers(
            self.ctx,
            response_headers(status, headers),
            end_of_stream,
        )
    }

    /// Sends a response body chunk: `proxy_on_response_body`.
    pub fn send_response_body(
        &mut self,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<Action, HarnessError> {
        self.plugin
            .send_response_body(self.ctx, chunk, end_of_stream)
    }

    /// Sends the upstream's response trailers, which end the response:
    /// `proxy_on_response_trailers`. Under [`HostProfile::Kong`](crate::HostProfile::Kong) the
    /// callback is never called: the body step gets the end of the response instead.
    pub fn send_response_trailers<N, V>(
        &mut self,
        trailers: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Action, HarnessError>
    where
        N: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.plugin
            .send_trailers(Phase::Response, self.ctx, Headers::from_pairs(trailers))
    }

    /// The local response the filter sent, as the client got it (after the filter's response
    /// callbacks); `None` if it sent none.
    pub fn local_response(&self) -> Option<HttpOutcome> {
        let s = self.state()?;
        let details = s.local_reply_details.clone()?;
        let mut body = s.response_forwarded_body.clone();
        body.extend_from_slice(&s.response_body);
        Some(HttpOutcome::LocalResponse {
            status: status_of(&s.response_headers)
                .or(s.response_code)
                .unwrap_or(0),
            headers: s.response_headers.clone(),
            body,
            details,
        })
    }

    /// The request headers, as the filter left them.
    pub fn request_headers(&self) -> &Headers {
        self.state().map_or(&NO_HEADERS, |s| &s.request_headers)
    }

    /// The request body so far: what went upstream plus what the host buffers.
    pub fn request_body(&self) -> Vec<u8> {
        self.state().map_or_else(Vec::new, |s| {
            let mut body = s.forwarded_body.clone();
            body.extend_from_slice(&s.request_body);
            body
        })
    }

    /// The request trailers, as the filter left them (empty: none arrived, or the host keeps
    /// none).
    pub fn request_trailers(&self) -> &Headers {
        self.state().map_or(&NO_HEADERS, |s| &s.request_trailers)
    }

    /// The request trailers went upstream.
    pub fn request_trailers_forwarded(&self) -> bool {
        self.state().is_some_and(|s| s.request_trailers_forwarded)
    }

    /// The response trailers, as the filter left them.
    pub fn response_trailers(&self) -> &Headers {
        self.state().map_or(&NO_HEADERS, |s| &s.response_trailers)
    }

    /// The response trailers went to the client.
    pub fn response_trailers_forwarded(&self) -> bool {
        self.state().is_some_and(|s| s.response_trailers_forwarded)
    }

    /// The response headers, as the filter left them.
    pub fn response_headers(&self) -> &Headers {
        self.state().map_or(&NO_HEADERS, |s| &s.response_headers)
    }

    /// The response body so far (forwarded plus buffered).
    pub fn response_body(&self) -> Vec<u8> {
        self.state().map_or_else(Vec::new, |s| {
            let mut body = s.response_forwarded_body.clone();
            body.extend_from_slice(&s.response_body);
            body
        })
    }

    /// The filter holds the request (nothing goes upstream until it continues).
    pub fn is_request_paused(&self) -> bool {
        self.state().is_some_and(|s| s.request_paused)
    }

    /// The filter holds the response.
    pub fn is_response_paused(&self) -> bool {
        self.state().is_some_and(|s| s.response_paused)
    }

    /// The request went upstream: headers sent, not held, no local response.
    pub fn is_forwarded(&self) -> bool {
        self.state().is_some_and(|s| {
            s.request_headers_sent
                && !s.request_paused
                && !s.kong_body_pending
                && !s.kong_deliver_body
                && !s.ended()
        })
    }

    /// The filter reset the stream (`proxy_close_stream`).
    pub fn is_reset(&self) -> bool {
        self.state().is_some_and(|s| s.reset.is_some())
    }

    /// Ends the stream: `proxy_on_log`, `proxy_on_done`, `proxy_on_delete`.
    pub fn finish(mut self) -> Result<(), HarnessError> {
        self.finished = true;
        let result = self.plugin.finish_stream(self.ctx);
        self.plugin.remove_stream(self.ctx);
        result
    }
}

impl Drop for HttpStream<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if !self.plugin.is_failed() {
            let _ = self.plugin.finish_stream(self.ctx);
        }
        self.plugin.remove_stream(self.ctx);
    }
}
