//! The HTTP stream lifecycle, driven the way Envoy's filter manager drives a proxy-wasm
//! filter (`source/extensions/common/wasm/context.cc`):
//!
//! - `proxy_on_request_headers(ctx, n, end_of_stream)`; a stop (`1`) holds the request, but
//!   body chunks still reach the filter.
//! - `proxy_on_request_body(ctx, size, end_of_stream)`: after StopIterationAndBuffer (`1`) the
//!   next chunk is appended to the buffered body and `size` is the accumulated length;
//!   Continue (`0`) passes the buffered body (as the filter left it) upstream and resumes the
//!   request.
//! - A buffered body that outgrows Envoy's buffer limit gets Envoy's own `413` (request) or
//!   `500` (response) local reply, without calling the filter for that chunk.
//! - Trailers end a stream without a body callback that says so: the last body chunk comes with
//!   `end_of_stream = false`, then `proxy_on_request_trailers(ctx, n)` /
//!   `proxy_on_response_trailers(ctx, n)`. A body the filter was buffering stays buffered and
//!   readable (and, on the response, replaceable) in that callback; Continue (`0`) sends the
//!   buffered body and the trailers on, a stop holds them until `proxy_continue_stream` or a
//!   local reply. A filter without the callback lets the stream go on (Continue), buffered body
//!   and all. The trailer map is readable and writable until the stream continues past it.
//! - `proxy_continue_stream` resumes a held request or response after the current callback.
//! - `proxy_send_local_response` ends the request after the current callback: nothing more
//!   goes upstream, and the reply passes through this filter's own `on_response_headers`
//!   (and `on_response_body`) before the client gets it.
//! - At the end: `proxy_on_log` (header maps readable), `proxy_on_done`, `proxy_on_delete`.

use std::collections::BTreeMap;

use crate::abi::{raw, raw_len, Action};
use crate::error::HarnessError;
use crate::headers::Headers;
use crate::options::HostProfile;
use crate::plugin::{Plugin, ROOT_CONTEXT};
use crate::request::{response_headers, HttpOutcome, HttpRequest};
use crate::state::{LocalReply, StreamState};

/// The stream callbacks that return an [`Action`].
#[derive(Debug, Clone, Copy)]
enum Callback {
    RequestHeaders,
    RequestBody,
    ResponseHeaders,
    ResponseBody,
}

/// A direction of the stream: the request (downstream to upstream) or the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Request,
    Response,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Request => "request",
            Phase::Response => "response",
        }
    }
}

/// The trailer state of one direction of a stream.
struct TrailerState<'s> {
    /// The trailers, as the filter left them.
    map: &'s mut Headers,
    /// They arrived (and ended that direction).
    sent: &'s mut bool,
    /// The map is readable and writable.
    live: &'s mut bool,
    /// They went on (upstream, or to the client).
    forwarded: &'s mut bool,
}

fn trailer_state(s: &mut StreamState, phase: Phase) -> TrailerState<'_> {
    match phase {
        Phase::Request => TrailerState {
            map: &mut s.request_trailers,
            sent: &mut s.request_trailers_sent,
            live: &mut s.request_trailers_live,
            forwarded: &mut s.request_trailers_forwarded,
        },
        Phase::Response => TrailerState {
            map: &mut s.response_trailers,
            sent: &mut s.response_trailers_sent,
            live: &mut s.response_trailers_live,
            forwarded: &mut s.response_trailers_forwarded,
        },
    }
}

/// The trailers of `phase`, if any arrived, go on with the rest of it.
fn forward_trailers(s: &mut StreamState, phase: Phase) {
    let t = trailer_state(s, phase);
    if *t.sent {
        *t.live = false;
        *t.forwarded = true;
    }
}

/// The trailers of `phase` that went on (an empty map if none did), taken from `s`.
fn take_forwarded_trailers(s: &mut StreamState, phase: Phase) -> Headers {
    let t = trailer_state(s, phase);
    if *t.forwarded {
        std::mem::take(t.map)
    } else {
        Headers::new()
    }
}

/// A body chunk or the trailers of `phase` may come: its headers were sent, and neither it nor
/// the stream has ended. The response checks the stream's end first (a local reply also sends
/// response headers and may end the response).
fn check_open(s: &StreamState, phase: Phase) -> Result<(), HarnessError> {
    let usage = |message: String| Err(HarnessError::Usage(message));
    let (headers_sent, ended) = match phase {
        Phase::Request => (s.request_headers_sent, s.request_ended),
        Phase::Response => (s.response_headers_sent, s.response_ended),
    };
    if phase == Phase::Response && s.ended() {
        return usage("the stream already ended (local response or reset)".to_owned());
    }
    if !headers_sent {
        return usage(format!("send the {} headers first", phase.name()));
    }
    if ended {
        return usage(format!("the {} already ended", phase.name()));
    }
    if s.ended() {
        return usage(
            "the stream already ended (local response or reset); Envoy would not call the filter"
                .to_owned(),
        );
    }
    Ok(())
}

fn forward_request(s: &mut StreamState) {
    s.request_paused = false;
    s.request_headers_live = false;
    s.forwarded_body.append(&mut s.request_body);
    s.request_body_live = false;
    s.request_buffering = false;
    forward_trailers(s, Phase::Request);
}

fn forward_response(s: &mut StreamState) {
    s.response_paused = false;
    s.response_headers_live = false;
    s.response_forwarded_body.append(&mut s.response_body);
    s.response_body_live = false;
    s.response_buffering = false;
    forward_trailers(s, Phase::Response);
}

/// What the host does with a body callback's stop value.
fn hold_body(buffering: &mut bool, body: &mut Vec<u8>, live: &mut bool, action: Action) {
    match action {
        Action::Continue => {}
        // StopIterationAndBuffer / StopIterationAndWatermark: keep and append.
        Action::Pause | Action::Other(2) => *buffering = true,
        // StopIterationNoBuffer: the host keeps nothing.
        Action::Other(_) => {
            *buffering = false;
            body.clear();
            *live = false;
        }
    }
}

/// Kong: what `proxy_continue_stream(HttpRequest)` (or the end of the stream's calls) does to
/// a held request: a held headers step moves on to reading the body, a held body step sends
/// the request upstream.
fn kong_resume(s: &mut StreamState) {
    s.request_paused = false;
    if s.kong_body_delivered {
        forward_request(s);
    } else if s.request_ended {
        kong_body_complete(s);
    } else {
        s.kong_body_pending = true;
    }
}

/// Kong: the whole request body is in; the body step runs unless the body is empty.
fn kong_body_complete(s: &mut StreamState) {
    s.kong_body_pending = false;
    if s.request_body.is_empty() {
        s.kong_body_delivered = true;
        forward_request(s);
    } else {
        s.kong_deliver_body = true;
    }
}

fn over_limit(limit: Option<usize>, buffered: &[u8], chunk: &[u8]) -> bool {
    limit.is_some_and(|limit| buffered.len().saturating_add(chunk.len()) > limit)
}

/// The reply Envoy itself sends when a buffered body outgrows the buffer limit; the filter's
/// body callback is not called for that chunk.
fn too_large(status: u16, details: &str) -> LocalReply {
    let body: &[u8] = if status == 413 {
        b"Payload Too Large"
    } else {
        b"Internal Server Error"
    };
    LocalReply {
        status,
        details: details.to_owned(),
        body: body.to_vec(),
        headers: Vec::new(),
    }
}

pub(crate) fn status_of(headers: &Headers) -> Option<u16> {
    std::str::from_utf8(headers.get(":status")?)
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl Plugin {
    fn kong(&self) -> bool {
        self.store.data().profile == HostProfile::Kong
    }

    pub(crate) fn stream_state(&self, ctx: u32) -> Result<&StreamState, HarnessError> {
        self.store
            .data()
            .stream(ctx)
            .ok_or_else(|| HarnessError::Usage(format!("no stream has context id `{ctx}`")))
    }

    fn stream_state_mut(&mut self, ctx: u32) -> Result<&mut StreamState, HarnessError> {
        self.store
            .data_mut()
            .stream_mut(ctx)
            .ok_or_else(|| HarnessError::Usage(format!("no stream has context id `{ctx}`")))
    }

    fn call_action(
        &mut self,
        callback: Callback,
        ctx: u32,
        size: usize,
        end_of_stream: bool,
    ) -> Result<Action, HarnessError> {
        let (name, func) = match callback {
            Callback::RequestHeaders => {
                ("proxy_on_request_headers", &self.exports.on_request_headers)
            }
            Callback::RequestBody => ("proxy_on_request_body", &self.exports.on_request_body),
            Callback::ResponseHeaders => (
                "proxy_on_response_headers",
                &self.exports.on_response_headers,
            ),
            Callback::ResponseBody => ("proxy_on_response_body", &self.exports.on_response_body),
        };
        let func = func.clone();
        let result = self.call(
            name,
            ctx,
            func,
            (raw(ctx), raw_len(size), i32::from(end_of_stream)),
        )?;
        // A filter without the callback lets the stream through, as in Envoy.
        Ok(result.map_or(Action::Continue, Action::from_raw))
    }

    /// `proxy_on_request_trailers(ctx, n)` / `proxy_on_response_trailers(ctx, n)`.
    fn call_trailers(
        &mut self,
        phase: Phase,
        ctx: u32,
        count: usize,
    ) -> Result<Action, HarnessError> {
        let (name, func) = match phase {
            Phase::Request => (
                "proxy_on_request_trailers",
                &self.exports.on_request_trailers,
            ),
            Phase::Response => (
                "proxy_on_response_trailers",
                &self.exports.on_response_trailers,
            ),
        };
        let func = func.clone();
        let result = self.call(name, ctx, func, (raw(ctx), raw_len(count)))?;
        // Without the callback the trailers (and whatever the host buffered) go on.
        Ok(result.map_or(Action::Continue, Action::from_raw))
    }

    /// Creates an HTTP context (`proxy_on_context_create(ctx, root)`).
    pub(crate) fn open_stream(
        &mut self,
        properties: BTreeMap<Vec<String>, Vec<u8>>,
    ) -> Result<u32, HarnessError> {
        self.check_alive()?;
        let ctx = self.next_context;
        self.next_context = ctx
            .checked_add(1)
            .ok_or_else(|| HarnessError::Usage("context ids are exhausted".to_owned()))?;
        self.store
            .data_mut()
            .streams
            .push(StreamState::new(ctx, properties));
        let create = self.exports.on_context_create.clone();
        if let Err(e) = self.call(
            "proxy_on_context_create",
            ctx,
            create,
            (raw(ctx), raw(ROOT_CONTEXT)),
        ) {
            self.remove_stream(ctx);
            return Err(e);
        }
        Ok(ctx)
    }

    pub(crate) fn send_request_headers(
        &mut self,
        ctx: u32,
        headers: Headers,
        end_of_stream: bool,
    ) -> Result<Action, HarnessError> {
        let s = self.stream_state_mut(ctx)?;
        if s.request_headers_sent {
            return Err(HarnessError::Usage(
                "the request headers were already sent".to_owned(),
            ));
        }
        s.request_headers_sent = true;
        s.request_ended = end_of_stream;
        s.request_headers = headers;
        s.request_headers_live = true;
        let count = s.request_headers.len();
        // ngx_wasm_module never knows at this point whether a body follows.
        let eos = end_of_stream && !self.kong();
        let action = self.call_action(Callback::RequestHeaders, ctx, count, eos)?;
        self.settle(ctx, Phase::Request, action, false)?;
        Ok(action)
    }

    pub(crate) fn send_request_body(
        &mut self,
        ctx: u32,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<Action, HarnessError> {
        let limit = self.store.data().buffer_limit;
        let s = self.stream_state_mut(ctx)?;
        check_open(s, Phase::Request)?;
        s.request_ended = end_of_stream;
        if self.store.data().profile == HostProfile::Kong {
            return self.kong_request_body(ctx, chunk, end_of_stream, limit);
        }
        let Ok(s) = self.stream_state_mut(ctx) else {
            return Ok(Action::Continue);
        };
        if s.request_buffering && over_limit(limit, &s.request_body, chunk) {
            s.pending_local_reply = Some(too_large(413, "request_payload_too_large"));
            self.run_deferred()?;
            return Ok(Action::Pause);
        }
        if !s.request_buffering {
            s.request_body.clear();
        }
        s.request_body.extend_from_slice(chunk);
        s.request_body_live = true;
        let size = s.request_body.len();
        let action = self.call_action(Callback::RequestBody, ctx, size, end_of_stream)?;
        self.settle(ctx, Phase::Request, action, true)?;
        Ok(action)
    }

    pub(crate) fn send_response_headers(
        &mut self,
        ctx: u32,
        headers: Headers,
        end_of_stream: bool,
    ) -> Result<Action, HarnessError> {
        let s = self.stream_state_mut(ctx)?;
        if s.ended() {
            return Err(HarnessError::Usage(
                "the stream already ended (local response or reset)".to_owned(),
            ));
        }
        if !s.request_headers_sent || s.request_paused || s.kong_body_pending || s.kong_deliver_body
        {
            return Err(HarnessError::Usage(
                "the request has not gone upstream (the filter holds it), so no response can come"
                    .to_owned(),
            ));
        }
        if s.response_headers_sent {
            return Err(HarnessError::Usage(
                "the response headers were already sent".to_owned(),
            ));
        }
        s.response_headers_sent = true;
        s.response_ended = end_of_stream;
        s.response_code = status_of(&headers);
        s.response_headers = headers;
        s.response_headers_live = true;
        let count = s.response_headers.len();
        let eos = end_of_stream && !self.kong();
        let action = self.call_action(Callback::ResponseHeaders, ctx, count, eos)?;
        self.settle(ctx, Phase::Response, action, false)?;
        Ok(action)
    }

    /// Kong: nginx reads the whole body before the filter sees any of it, and only once the
    /// headers step let the request go on.
    fn kong_request_body(
        &mut self,
        ctx: u32,
        chunk: &[u8],
        end_of_stream: bool,
        limit: Option<usize>,
    ) -> Result<Action, HarnessError> {
        let s = self.stream_state_mut(ctx)?;
        if over_limit(limit, &s.request_body, chunk) {
            // nginx's `client_max_body_size`.
            s.pending_local_reply = Some(too_large(413, "request_payload_too_large"));
            self.run_deferred()?;
            return Ok(Action::Pause);
        }
        s.request_body.extend_from_slice(chunk);
        if end_of_stream && s.kong_body_pending && !s.request_paused {
            kong_body_complete(s);
        }
        self.run_deferred()?;
        let s = self.stream_state(ctx)?;
        Ok(if s.request_paused {
            Action::Pause
        } else {
            Action::Continue
        })
    }

    /// Kong: the body step, with the whole body and `end_of_stream` set.
    fn kong_deliver_body(&mut self, ctx: u32) -> Result<(), HarnessError> {
        let s = self.stream_state_mut(ctx)?;
        s.kong_deliver_body = false;
        s.kong_body_delivered = true;
        s.request_body_live = true;
        let size = s.request_body.len();
        let action = self.call_action(Callback::RequestBody, ctx, size, true)?;
        self.settle(ctx, Phase::Request, action, true)
    }

    /// Kong: response body chunks, and the buffering a pause asks for.
    fn kong_response_body(
        &mut self,
        ctx: u32,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<Action, HarnessError> {
        let room = self.store.data().response_body_buffers;
        let s = self.stream_state_mut(ctx)?;
        if s.kong_replaced {
            return Ok(Action::Continue);
        }
        if s.kong_resp_buffering {
            s.response_body.extend_from_slice(chunk);
            if !end_of_stream && s.response_body.len() < room {
                return Ok(Action::Pause);
            }
            s.kong_resp_buffering = false;
            s.kong_resp_buffered = true;
        } else {
            s.response_body.clear();
            s.response_body.extend_from_slice(chunk);
        }
        s.response_body_live = true;
        let size = s.response_body.len();
        let action = self.call_action(Callback::ResponseBody, ctx, size, end_of_stream)?;
        self.settle(ctx, Phase::Response, action, true)?;
        Ok(action)
    }

    pub(crate) fn send_response_body(
        &mut self,
        ctx: u32,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<Action, HarnessError> {
        let limit = self.store.data().buffer_limit;
        let s = self.stream_state_mut(ctx)?;
        check_open(s, Phase::Response)?;
        s.response_ended = end_of_stream;
        if self.store.data().profile == HostProfile::Kong {
            return self.kong_response_body(ctx, chunk, end_of_stream);
        }
        let Ok(s) = self.stream_state_mut(ctx) else {
            return Ok(Action::Continue);
        };
        if s.response_buffering && over_limit(limit, &s.response_body, chunk) {
            s.pending_local_reply = Some(too_large(500, "response_payload_too_large"));
            self.run_deferred()?;
            return Ok(Action::Pause);
        }
        if !s.response_buffering {
            s.response_body.clear();
        }
        s.response_body.extend_from_slice(chunk);
        s.response_body_live = true;
        let size = s.response_body.len();
        let action = self.call_action(Callback::ResponseBody, ctx, size, end_of_stream)?;
        self.settle(ctx, Phase::Response, action, true)?;
        Ok(action)
    }

    /// Trailers: they end the request or the response (`phase`). Envoy calls
    /// `proxy_on_request_trailers` / `proxy_on_response_trailers` with their count; see
    /// [`Plugin::kong_trailers`] for ngx_wasm_module.
    pub(crate) fn send_trailers(
        &mut self,
        phase: Phase,
        ctx: u32,
        trailers: Headers,
    ) -> Result<Action, HarnessError> {
        let s = self.stream_state_mut(ctx)?;
        check_open(s, phase)?;
        match phase {
            Phase::Request => s.request_ended = true,
            Phase::Response => s.response_ended = true,
        }
        if self.kong() {
            return self.kong_trailers(phase, ctx);
        }
        let t = trailer_state(self.stream_state_mut(ctx)?, phase);
        *t.map = trailers;
        *t.sent = true;
        *t.live = true;
        let count = t.map.len();
        let action = self.call_trailers(phase, ctx, count)?;
        self.settle(ctx, phase, action, false)?;
        Ok(action)
    }

    /// Kong: ngx_wasm_module calls neither trailers callback, and passes no trailers on.
    fn kong_trailers(&mut self, phase: Phase, ctx: u32) -> Result<Action, HarnessError> {
        match phase {
            // No request trailers step: its step dispatch and `ngx_http_proxy_wasm_resume`
            // (src/http/proxy_wasm/ngx_http_proxy_wasm.c:451-492) have no case for
            // `NGX_PROXY_WASM_STEP_REQ_TRAILERS` and nothing resumes that step, so
            // `proxy_on_request_trailers` is never called (docs/PROXY_WASM.md: "NYI"). nginx
            // reads the whole body before the body step, which gets it with
            // `end_of_stream = true` (eof is hard-coded to 1, ngx_http_proxy_wasm.c:72): the
            // trailers are just the end of the body. They are not forwarded upstream (nginx's
            // proxy module sends no request trailers).
            Phase::Request => {
                let limit = self.store.data().buffer_limit;
                self.kong_request_body(ctx, &[], true, limit)
            }
            // `proxy_on_response_trailers` is only called from code under
            // `#ifdef NGX_WASM_RESPONSE_TRAILERS` (ngx_http_proxy_wasm.c:267-303, 469-473;
            // src/wasm/ngx_wasm_ops.c:543-548), a macro no build defines (`config` never sets
            // it): the callback is never called. The end of the upstream response reaches the
            // body step as the last buffer (`end_of_stream = true`, possibly with no bytes),
            // and nginx's proxy module does not pass upstream trailers to the client.
            Phase::Response => self.kong_response_body(ctx, &[], true),
        }
    }

    /// Applies a callback's return value, then the actions deferred during the call.
    fn settle(
        &mut self,
        ctx: u32,
        phase: Phase,
        action: Action,
        body: bool,
    ) -> Result<(), HarnessError> {
        if self.kong() {
            self.kong_settle(ctx, phase, action, body)?;
            return self.run_deferred();
        }
        let s = self.stream_state_mut(ctx)?;
        // A reply queued by this very callback wins over its return value.
        let applies = s.reset.is_none()
            && s.pending_local_reply.is_none()
            && (phase == Phase::Response || s.local_reply_details.is_none());
        if applies {
            match (phase, action) {
                (Phase::Request, Action::Continue) => forward_request(s),
                (Phase::Response, Action::Continue) => forward_response(s),
                (Phase::Request, _) => {
                    s.request_paused = true;
                    if body {
                        hold_body(
                            &mut s.request_buffering,
                            &mut s.request_body,
                            &mut s.request_body_live,
                            action,
                        );
                    }
                }
                (Phase::Response, _) => {
                    s.response_paused = true;
                    if body {
                        hold_body(
                            &mut s.response_buffering,
                            &mut s.response_body,
                            &mut s.response_body_live,
                            action,
                        );
                    }
                }
            }
        }
        self.run_deferred()
    }

    /// ngx_wasm_module's reading of a callback's return value.
    fn kong_settle(
        &mut self,
        ctx: u32,
        phase: Phase,
        action: Action,
        body: bool,
    ) -> Result<(), HarnessError> {
        let mut warning = None;
        let s = self.stream_state_mut(ctx)?;
        if s.reset.is_some() || s.pending_local_reply.is_some() {
            return Ok(());
        }
        match (phase, action) {
            (Phase::Request, _) if s.local_reply_details.is_some() => {}
            (Phase::Request, Action::Continue) if body || s.request_ended => {
                s.kong_body_delivered = true;
                forward_request(s);
            }
            (Phase::Request, Action::Continue) => {
                s.request_headers_live = true;
                s.kong_body_pending = true;
            }
            (Phase::Request, _) => s.request_paused = true,
            (Phase::Response, Action::Continue) => forward_response(s),
            (Phase::Response, _) if !body => {
                if let Some((status, replaced)) = s.kong_override.take() {
                    s.response_code = Some(status);
                    s.response_headers
                        .replace(b":status", status.to_string().as_bytes());
                    s.response_forwarded_body = replaced;
                    s.response_ended = true;
                    s.kong_replaced = true;
                } else {
                    warning = Some(
                        "\"ResponseHeaders\" returned \"PAUSE\": local response expected but none produced",
                    );
                }
                forward_response(s);
            }
            (Phase::Response, _) if s.kong_resp_buffered || s.response_ended => {
                if s.kong_resp_buffered {
                    warning = Some("bad \"ResponseBody\" return action: \"PAUSE\"");
                }
                forward_response(s);
            }
            (Phase::Response, _) => {
                // The chunk stays with the host, which collects the rest of the body.
                s.kong_resp_buffering = true;
                s.response_paused = true;
                s.response_body_live = false;
            }
        }
        if let Some(message) = warning {
            self.store
                .data_mut()
                .log(crate::LogLevel::Warn, format!("ngx_wasm_module: {message}"));
        }
        Ok(())
    }

    /// Envoy's "after VM call" actions: resume streams the guest continued, deliver local
    /// replies it sent.
    pub(crate) fn run_deferred(&mut self) -> Result<(), HarnessError> {
        loop {
            let host = self.store.data_mut();
            let kong = host.profile == HostProfile::Kong;
            for s in &mut host.streams {
                let done = s.reset.is_some() || s.pending_local_reply.is_some();
                if std::mem::take(&mut s.request_continue)
                    && !done
                    && s.local_reply_details.is_none()
                    && s.request_paused
                {
                    if kong {
                        kong_resume(s);
                    } else {
                        forward_request(s);
                    }
                }
                if std::mem::take(&mut s.response_continue) && !done && s.response_paused {
                    forward_response(s);
                }
            }
            if let Some(ctx) = host
                .streams
                .iter()
                .find(|s| s.kong_deliver_body && !s.ended())
                .map(|s| s.id)
            {
                self.kong_deliver_body(ctx)?;
                continue;
            }
            let Some(ctx) = host
                .streams
                .iter()
                .find(|s| s.pending_local_reply.is_some())
                .map(|s| s.id)
            else {
                return Ok(());
            };
            self.deliver_local_reply(ctx)?;
        }
    }

    /// Turns a queued local reply into the response, through the filter's response callbacks.
    fn deliver_local_reply(&mut self, ctx: u32) -> Result<(), HarnessError> {
        let s = self.stream_state_mut(ctx)?;
        let Some(reply) = s.pending_local_reply.take() else {
            return Ok(());
        };
        let mut headers = response_headers(reply.status, reply.headers);
        if !reply.body.is_empty() {
            // Envoy sets the length and, only if the filter gave none, a text content type.
            headers.replace(b"content-length", reply.body.len().to_string().as_bytes());
            if !headers.contains("content-type") {
                headers.add(b"content-type", b"text/plain");
            }
        }
        // The request side keeps whatever maps it had (Envoy does not drop its pointers for
        // a local reply); it just never goes upstream.
        s.local_reply_details = Some(reply.details);
        s.response_code = Some(reply.status);
        s.response_headers = headers;
        s.response_headers_sent = true;
        s.response_headers_live = true;
        s.response_ended = reply.body.is_empty();
        s.response_body.clear();
        s.response_forwarded_body.clear();
        s.response_body_live = false;
        s.response_buffering = false;
        s.response_paused = false;
        s.response_trailers = Headers::new();
        s.response_trailers_sent = false;
        s.response_trailers_live = false;
        s.response_trailers_forwarded = false;
        let count = s.response_headers.len();
        let has_body = !reply.body.is_empty();
        let eos = !has_body && !self.kong();
        let action = self.call_action(Callback::ResponseHeaders, ctx, count, eos)?;
        self.settle(ctx, Phase::Response, action, false)?;
        let s = self.stream_state_mut(ctx)?;
        if has_body && s.reset.is_none() {
            s.response_ended = true;
            s.response_body = reply.body;
            s.response_body_live = true;
            let size = s.response_body.len();
            let action = self.call_action(Callback::ResponseBody, ctx, size, true)?;
            self.settle(ctx, Phase::Response, action, true)?;
        }
        Ok(())
    }

    /// While the filter holds the stream, answers its `proxy_http_call`s from the responders;
    /// a hold nothing can release is [`HarnessError::Stalled`].
    fn await_release(&mut self, ctx: u32, phase: Phase) -> Result<(), HarnessError> {
        loop {
            let s = self.stream_state(ctx)?;
            let held = match phase {
                Phase::Request => s.request_paused,
                Phase::Response => s.response_paused,
            };
            if s.ended() || !held {
                return Ok(());
            }
            let calls = &self.store.data().http_calls;
            let next = calls.iter().find_map(|c| {
                self.responders
                    .get(&c.upstream)
                    .map(|r| (c.token, r.clone()))
            });
            match next {
                Some((token, response)) => self.respond_http_call_with(token, response)?,
                None => {
                    return Err(HarnessError::Stalled {
                        phase: phase.name(),
                        pending_http_calls: calls.iter().map(|c| c.token).collect(),
                    })
                }
            }
        }
    }

    /// `proxy_on_log`, `proxy_on_done`, `proxy_on_delete`.
    pub(crate) fn finish_stream(&mut self, ctx: u32) -> Result<(), HarnessError> {
        let s = self.stream_state_mut(ctx)?;
        s.access_log = true;
        s.request_body_live = false;
        s.response_body_live = false;
        let on_log = self.exports.on_log.clone();
        let logged = self.call("proxy_on_log", ctx, on_log, raw(ctx));
        if let Ok(s) = self.stream_state_mut(ctx) {
            s.access_log = false;
        }
        logged?;
        let on_done = self.exports.on_done.clone();
        self.call("proxy_on_done", ctx, on_done, raw(ctx))?;
        let on_delete = self.exports.on_delete.clone();
        self.call("proxy_on_delete", ctx, on_delete, raw(ctx))?;
        Ok(())
    }

    /// Forgets a stream. Its pending `proxy_http_call`s stay: Envoy owns them on the root
    /// context, and the SDK drops a response whose context is gone.
    pub(crate) fn remove_stream(&mut self, ctx: u32) -> Option<StreamState> {
        let host = self.store.data_mut();
        let index = host.streams.iter().position(|s| s.id == ctx)?;
        Some(host.streams.swap_remove(index))
    }

    /// One direction of a stream (`phase`): its headers, body chunks and trailers, the last
    /// of them with end of stream, until the stream ends; then the wait for the filter to let
    /// it go.
    fn drive_phase(
        &mut self,
        ctx: u32,
        phase: Phase,
        headers: Headers,
        body_chunks: &[Vec<u8>],
        trailers: Headers,
    ) -> Result<(), HarnessError> {
        let has_body = !body_chunks.is_empty();
        let has_trailers = !trailers.is_empty();
        let end_of_stream = !has_body && !has_trailers;
        match phase {
            Phase::Request => self.send_request_headers(ctx, headers, end_of_stream)?,
            Phase::Response => self.send_response_headers(ctx, headers, end_of_stream)?,
        };
        let last = body_chunks.len();
        for (i, chunk) in body_chunks.iter().enumerate() {
            if self.stream_state(ctx)?.ended() {
                break;
            }
            let end_of_stream = i + 1 == last && !has_trailers;
            match phase {
                Phase::Request => self.send_request_body(ctx, chunk, end_of_stream)?,
                Phase::Response => self.send_response_body(ctx, chunk, end_of_stream)?,
            };
        }
        if has_trailers && !self.stream_state(ctx)?.ended() {
            self.send_trailers(phase, ctx, trailers)?;
        }
        self.await_release(ctx, phase)
    }

    fn drive(&mut self, ctx: u32, req: &HttpRequest) -> Result<(), HarnessError> {
        let (headers, trailers) = (req.header_map(), req.trailer_map());
        self.drive_phase(ctx, Phase::Request, headers, &req.body_chunks, trailers)?;
        if self.stream_state(ctx)?.ended() {
            return Ok(());
        }
        let upstream = &req.upstream_response;
        let (headers, trailers) = (upstream.header_map(), upstream.trailer_map());
        self.drive_phase(
            ctx,
            Phase::Response,
            headers,
            &upstream.body_chunks,
            trailers,
        )
    }

    /// Sends one request through the filter's whole lifecycle, like Envoy: context creation,
    /// request headers, body chunks and trailers, (if forwarded) the upstream response (headers,
    /// body chunks, trailers), then log, done and delete. With trailers, no body chunk carries
    /// end of stream: the trailers callback ends the stream (Envoy; ngx_wasm_module under
    /// [`HostProfile::Kong`] never calls it).
    ///
    /// While the filter holds the request waiting for `proxy_http_call` responses, calls to
    /// upstreams with a responder ([`Plugin::set_http_call_responder`]) are answered; without
    /// one the result is [`HarnessError::Stalled`] (use [`Plugin::stream`] to answer by hand).
    ///
    /// A trap or timeout is [`HarnessError::Trap`] / [`HarnessError::Timeout`]: Envoy
    /// (fail-closed) would answer `503` and forward nothing (see
    /// [`HttpOutcome::fail_closed`]).
    pub fn request(&mut self, req: &HttpRequest) -> Result<HttpOutcome, HarnessError> {
        let ctx = self.open_stream(req.properties.clone())?;
        let driven = self.drive(ctx, req);
        let finished = if self.failed.is_none() {
            self.finish_stream(ctx)
        } else {
            Ok(())
        };
        let state = self.remove_stream(ctx);
        driven?;
        finished?;
        let state = state.ok_or_else(|| HarnessError::Usage(format!("stream `{ctx}` vanished")))?;
        outcome(state)
    }
}

/// The outcome of a finished stream.
pub(crate) fn outcome(mut s: StreamState) -> Result<HttpOutcome, HarnessError> {
    if let Some(details) = s.reset {
        return Err(HarnessError::StreamReset { details });
    }
    let mut body = std::mem::take(&mut s.response_forwarded_body);
    body.append(&mut s.response_body);
    let status = status_of(&s.response_headers)
        .or(s.response_code)
        .unwrap_or(0);
    if let Some(details) = s.local_reply_details {
        return Ok(HttpOutcome::LocalResponse {
            status,
            headers: s.response_headers,
            body,
            details,
        });
    }
    let request_trailers = take_forwarded_trailers(&mut s, Phase::Request);
    let response_trailers = take_forwarded_trailers(&mut s, Phase::Response);
    Ok(HttpOutcome::Forwarded {
        request_headers: s.request_headers,
        request_body: s.forwarded_body,
        request_trailers,
        response_status: status,
        response_headers: s.response_headers,
        response_body: body,
        response_trailers,
    })
}
