//! Numeric constants of the proxy-wasm ABI v0.2.1 as the Rust SDK 0.2.5 encodes them.
//!
//! On wasm32 every `usize`, pointer, `bool` and enum crosses the boundary as an `i32`; the
//! helpers here turn those raw words into typed values and back.

/// Result of a host call, as the guest sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    InternalFailure = 10,
    BrokenConnection = 11,
    Unimplemented = 12,
}

impl Status {
    pub(crate) fn code(self) -> i32 {
        self as i32
    }
}

/// Header maps a guest can address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MapType {
    RequestHeaders,
    RequestTrailers,
    ResponseHeaders,
    ResponseTrailers,
    GrpcReceiveInitialMetadata,
    GrpcReceiveTrailingMetadata,
    HttpCallResponseHeaders,
    HttpCallResponseTrailers,
}

impl MapType {
    pub(crate) fn from_raw(raw: i32) -> Option<Self> {
        Some(match raw {
            0 => Self::RequestHeaders,
            1 => Self::RequestTrailers,
            2 => Self::ResponseHeaders,
            3 => Self::ResponseTrailers,
            4 => Self::GrpcReceiveInitialMetadata,
            5 => Self::GrpcReceiveTrailingMetadata,
            6 => Self::HttpCallResponseHeaders,
            7 => Self::HttpCallResponseTrailers,
            _ => return None,
        })
    }
}

/// Buffers a guest can address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BufferType {
    HttpRequestBody,
    HttpResponseBody,
    DownstreamData,
    UpstreamData,
    HttpCallResponseBody,
    GrpcReceiveBuffer,
    VmConfiguration,
    PluginConfiguration,
    CallData,
}

impl BufferType {
    pub(crate) fn from_raw(raw: i32) -> Option<Self> {
        Some(match raw {
            0 => Self::HttpRequestBody,
            1 => Self::HttpResponseBody,
            2 => Self::DownstreamData,
            3 => Self::UpstreamData,
            4 => Self::HttpCallResponseBody,
            5 => Self::GrpcReceiveBuffer,
            6 => Self::VmConfiguration,
            7 => Self::PluginConfiguration,
            8 => Self::CallData,
            _ => return None,
        })
    }
}

/// Stream addressed by `proxy_continue_stream` / `proxy_close_stream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamType {
    HttpRequest,
    HttpResponse,
    Downstream,
    Upstream,
}

impl StreamType {
    pub(crate) fn from_raw(raw: i32) -> Option<Self> {
        Some(match raw {
            0 => Self::HttpRequest,
            1 => Self::HttpResponse,
            2 => Self::Downstream,
            3 => Self::Upstream,
            _ => return None,
        })
    }
}

/// What a filter callback asked the host to do with the stream.
///
/// Header callbacks return `0` (Continue) or `1` (StopIteration); body callbacks return `0`
/// (Continue), `1` (StopIterationAndBuffer), `2` (StopIterationAndWatermark) or `3`
/// (StopIterationNoBuffer). The SDK's `Action::Pause` is `1` in both cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `0`: let the stream go on.
    Continue,
    /// `1`: stop (headers: StopIteration; body: StopIterationAndBuffer).
    Pause,
    /// Any other value (e.g. `2` StopIterationAndWatermark, `3` StopIterationNoBuffer). The
    /// harness treats it as a stop.
    Other(u32),
}

impl Action {
    pub(crate) fn from_raw(raw: i32) -> Self {
        match raw {
            0 => Self::Continue,
            1 => Self::Pause,
            other => Self::Other(word(other)),
        }
    }

    /// `true` for [`Action::Continue`].
    pub fn is_continue(self) -> bool {
        self == Self::Continue
    }
}

/// Log levels of `proxy_log`, ordered from most to least verbose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

impl LogLevel {
    pub(crate) fn from_raw(raw: i32) -> Option<Self> {
        Some(match raw {
            0 => Self::Trace,
            1 => Self::Debug,
            2 => Self::Info,
            3 => Self::Warn,
            4 => Self::Error,
            5 => Self::Critical,
            _ => return None,
        })
    }

    pub(crate) fn raw(self) -> u32 {
        self as u32
    }

    /// Lower-case name, as Envoy prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Metric kinds of `proxy_define_metric`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum MetricKind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

impl MetricKind {
    pub(crate) fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => Self::Counter,
            1 => Self::Gauge,
            2 => Self::Histogram,
            _ => return None,
        })
    }
}

/// A wasm `i32` argument reinterpreted as the `u32` the guest meant (pointers, sizes, ids).
pub(crate) fn word(raw: i32) -> u32 {
    u32::from_ne_bytes(raw.to_ne_bytes())
}

/// A `u32` passed to the guest as a wasm `i32` (bit-for-bit).
pub(crate) fn raw(value: u32) -> i32 {
    i32::from_ne_bytes(value.to_ne_bytes())
}

/// A host length as a guest `usize`; lengths beyond 4 GiB cannot exist in wasm32 memory.
pub(crate) fn raw_len(len: usize) -> i32 {
    raw(u32::try_from(len).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_bit_for_bit() {
        for v in [0u32, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX] {
            assert_eq!(word(raw(v)), v);
        }
        assert_eq!(word(-1), u32::MAX);
    }

    #[test]
    fn actions_decode() {
        assert_eq!(Action::from_raw(0), Action::Continue);
        assert_eq!(Action::from_raw(1), Action::Pause);
        assert_eq!(Action::from_raw(3), Action::Other(3));
    }

    #[test]
    fn unknown_enum_values_are_rejected() {
        assert!(MapType::from_raw(8).is_none());
        assert!(BufferType::from_raw(-1).is_none());
        assert!(StreamType::from_raw(4).is_none());
        assert!(LogLevel::from_raw(6).is_none());
        assert!(MetricKind::from_raw(3).is_none());
    }
}
