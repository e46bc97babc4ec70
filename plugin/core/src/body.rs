//! Bodies an adapter must hold, sans IO: a request body the decision reads, and a `tools/list`
//! response the core filters. The adapter reports what its host delivered; these say whether
//! to wait, decide, filter or refuse.

/// How a host delivers a request body to a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The filter can hold the request at its headers and receive the body (Envoy, edge).
    HoldsAtHeaders,
    /// The body step runs only for a non-empty body, and only after the headers step let the
    /// request go on; the host reads the whole body before anything goes upstream
    /// (ngx_wasm_module).
    AfterHeaders,
}

/// What to do with a request at its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtHeaders {
    /// Decide now: on the headers alone (`with_body: false`) or on an empty body.
    Decide { with_body: bool },
    /// The declared length is over the limit: refuse (413) now.
    Oversized,
    /// Wait for the body, holding the request at its headers or (`hold: false`) letting the
    /// headers step go on.
    Wait { hold: bool },
    /// The host cannot deliver a body of unknown length before it goes upstream: refuse (411).
    LengthRequired,
}

/// The plan for a request whose decision needs `limit` body bytes (`None`: none), given its
/// headers and how the host delivers bodies.
pub fn at_headers(
    limit: Option<usize>,
    end_of_stream: bool,
    content_length: Option<&str>,
    chunked: bool,
    delivery: Delivery,
) -> AtHeaders {
    let Some(limit) = limit else {
        return AtHeaders::Decide { with_body: false };
    };
    if end_of_stream {
        return AtHeaders::Decide { with_body: true };
    }
    let declared = content_length.map(|v| v.trim().parse::<u64>());
    if let Some(Ok(length)) = declared {
        if length > limit as u64 {
            return AtHeaders::Oversized;
        }
    }
    match delivery {
        Delivery::HoldsAtHeaders => AtHeaders::Wait { hold: true },
        Delivery::AfterHeaders => match declared {
            Some(Ok(0)) => AtHeaders::Decide { with_body: true },
            Some(Ok(_)) => AtHeaders::Wait { hold: false },
            // A malformed length never reaches a filter in nginx (400); be safe anyway. A
            // chunked body would skip the body step and reach the upstream undecided.
            Some(Err(_)) => AtHeaders::LengthRequired,
            None if chunked => AtHeaders::LengthRequired,
            None => AtHeaders::Decide { with_body: true },
        },
    }
}

/// A request waiting for its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    pub limit: usize,
    /// What the host holds of the body so far.
    pub buffered: usize,
}

/// What a body callback means for a waiting request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBody {
    /// Keep buffering.
    Wait,
    /// The body is complete (or the trailers ended it): decide on `buffered` bytes.
    Decide,
    /// Over the limit: refuse (413).
    Oversized,
}

impl Waiting {
    pub fn new(limit: usize) -> Self {
        Self { limit, buffered: 0 }
    }

    /// The host holds `size` bytes; `end` when the stream ended (last chunk or trailers).
    pub fn on_body(&mut self, size: usize, end: bool) -> OnBody {
        self.buffered = size;
        if size > self.limit {
            OnBody::Oversized
        } else if end {
            OnBody::Decide
        } else {
            OnBody::Wait
        }
    }
}

/// A `tools/list` response held for filtering.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldResponse {
    /// The response body was held once already.
    held: bool,
    /// What the host holds of the body.
    pub buffered: usize,
}

/// What a response body callback means for a held `tools/list` response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnResponseBody {
    /// Hold the body until it is complete.
    Hold,
    /// Filter the `size` bytes the host holds.
    Filter(usize),
    /// The host will not hold the rest: replace what it handed over by an error and drop the
    /// rest (unfiltered tools must not reach the caller).
    TooLarge,
}

impl HeldResponse {
    /// `keeps_whole_body`: the host accumulates a held body until its end (Envoy); otherwise
    /// a second partial delivery means its buffers are full (ngx_wasm_module).
    pub fn on_body(&mut self, size: usize, end: bool, keeps_whole_body: bool) -> OnResponseBody {
        if end {
            return OnResponseBody::Filter(size);
        }
        if self.held && !keeps_whole_body {
            return OnResponseBody::TooLarge;
        }
        self.held = true;
        self.buffered = size;
        OnResponseBody::Hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_wait_for_their_body_as_the_host_can_deliver_it() {
        use AtHeaders::*;
        use Delivery::*;
        let plan = |limit, eos, length, chunked, delivery| {
            at_headers(limit, eos, length, chunked, delivery)
        };
        assert_eq!(
            plan(None, false, Some("9"), false, HoldsAtHeaders),
            Decide { with_body: false }
        );
        assert_eq!(
            plan(Some(8), true, None, false, HoldsAtHeaders),
            Decide { with_body: true }
        );
        assert_eq!(
            plan(Some(8), false, Some("9"), false, AfterHeaders),
            Oversized
        );
        assert_eq!(
            plan(Some(8), false, None, true, HoldsAtHeaders),
            Wait { hold: true }
        );
        assert_eq!(
            plan(Some(8), false, Some("8"), false, AfterHeaders),
            Wait { hold: false }
        );
        assert_eq!(
            plan(Some(8), false, Some("0"), false, AfterHeaders),
            Decide { with_body: true }
        );
        assert_eq!(
            plan(Some(8), false, None, true, AfterHeaders),
            LengthRequired
        );
        assert_eq!(
            plan(Some(8), false, Some("x"), false, AfterHeaders),
            LengthRequired
        );
        assert_eq!(
            plan(Some(8), false, None, false, AfterHeaders),
            Decide { with_body: true }
        );

        let mut waiting = Waiting::new(8);
        assert_eq!(waiting.on_body(4, false), OnBody::Wait);
        assert_eq!(waiting.on_body(8, true), OnBody::Decide);
        assert_eq!(waiting.on_body(9, false), OnBody::Oversized);
    }

    #[test]
    fn a_held_response_is_filtered_whole_or_replaced() {
        let mut envoy = HeldResponse::default();
        assert_eq!(envoy.on_body(10, false, true), OnResponseBody::Hold);
        assert_eq!(envoy.on_body(20, false, true), OnResponseBody::Hold);
        assert_eq!(envoy.on_body(30, true, true), OnResponseBody::Filter(30));
        let mut nginx = HeldResponse::default();
        assert_eq!(nginx.on_body(10, false, false), OnResponseBody::Hold);
        assert_eq!(nginx.on_body(10, false, false), OnResponseBody::TooLarge);
    }
}
