//! Errors of the harness.

use std::path::PathBuf;
use std::time::Duration;

use crate::state::LogEntry;

/// Everything that can go wrong loading, starting or driving a module.
///
/// A guest trap or timeout while handling a request ([`HarnessError::Trap`],
/// [`HarnessError::Timeout`], later [`HarnessError::VmFailed`]) is what Envoy's default
/// `failure_policy: FAIL_CLOSED` turns into a `503` local reply (details `wasm_fail_stream`):
/// the request is never forwarded. [`HarnessError::is_fail_closed`] tells these apart and
/// [`crate::HttpOutcome::fail_closed`] builds that 503.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot load the wasm module: {0}")]
    Load(String),

    #[error("the module imports functions the harness does not provide: {}", imports.join(", "))]
    UnsupportedImports { imports: Vec<String> },

    #[error("cannot instantiate the module: {0}")]
    Instantiate(String),

    /// `_initialize` or `proxy_on_vm_start` trapped, or `proxy_on_vm_start` returned false.
    #[error("the vm did not start: {reason}")]
    VmStartFailed { reason: String, logs: Vec<LogEntry> },

    /// `proxy_on_configure` returned false (or trapped: `trap` says how). Envoy refuses such a
    /// plugin; `logs` holds what the plugin logged while starting.
    #[error("the plugin refused its configuration{}{}", trap.as_deref().map(|t| format!(" (trap: {t})")).unwrap_or_default(), last_error(logs))]
    ConfigureRejected {
        logs: Vec<LogEntry>,
        trap: Option<String>,
    },

    /// The guest trapped (panic, `unreachable`, out-of-bounds access, `proc_exit`, ...).
    #[error("wasm trap in `{callback}`: {message}")]
    Trap {
        callback: &'static str,
        message: String,
    },

    /// A guest call ran longer than its budget and was interrupted.
    #[error("`{callback}` exceeded its execution budget of {budget:?}")]
    Timeout {
        callback: &'static str,
        budget: Duration,
    },

    /// An earlier trap left the vm failed; like Envoy, it refuses all further calls.
    #[error("the vm failed earlier and refuses further calls: {0}")]
    VmFailed(String),

    /// The module does not follow the proxy-wasm ABI (missing memory, wrong export types).
    #[error("abi violation: {0}")]
    Abi(String),

    /// The filter paused the stream and nothing can resume it: it waits for `proxy_http_call`
    /// responses nobody gave (answer them, or set a responder), or it never continued.
    #[error("the filter paused the {phase} and nothing resumes it (pending http calls: {pending_http_calls:?})")]
    Stalled {
        phase: &'static str,
        pending_http_calls: Vec<u32>,
    },

    /// The filter reset the stream (`proxy_close_stream`): the client gets no response.
    #[error("the filter reset the stream ({details})")]
    StreamReset { details: String },

    /// The harness was driven in a way no host would (e.g. a body after the end of stream).
    #[error("{0}")]
    Usage(String),
}

fn last_error(logs: &[LogEntry]) -> String {
    logs.iter()
        .rev()
        .find(|l| l.level >= crate::LogLevel::Warn)
        .map(|l| format!(": {}", l.message))
        .unwrap_or_default()
}

impl HarnessError {
    /// `true` for failures Envoy (fail-closed) answers with a 503 instead of forwarding.
    pub fn is_fail_closed(&self) -> bool {
        matches!(
            self,
            Self::Trap { .. } | Self::Timeout { .. } | Self::VmFailed(_)
        )
    }

    /// The logs carried by a start-up error.
    pub fn logs(&self) -> &[LogEntry] {
        match self {
            Self::ConfigureRejected { logs, .. } | Self::VmStartFailed { logs, .. } => logs,
            _ => &[],
        }
    }
}
