//! Test support for running the compiled Bridle filter in real hosts: where things are, test
//! token issuers, configuration documents, a recording upstream, and an Envoy fixture.
//!
//! The library never depends on a wasm runtime; tests that need the in-process harness take it
//! as a dev-dependency.

pub mod approval_binding;
pub mod bundle;
pub mod cases;
pub mod config;
pub mod demo;
pub mod envoy;
pub mod fixtures;
mod http1;
pub mod jsonschema;
pub mod kong;
pub mod paths;
pub mod peer_binding;
pub mod tls;
pub mod tokens;
pub mod upstream;

pub use config::ConfigBuilder;
pub use envoy::{Envoy, EnvoyOptions, Request, Response};
pub use tokens::{Alg, Claims, TestIssuer};
pub use upstream::{ReceivedRequest, Upstream};

use std::path::PathBuf;

/// Everything that can go wrong while setting up or driving a host.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or tool the tests need is missing; the message says how to get it.
    #[error("{0}")]
    Missing(String),
    /// Envoy exited before it became ready (e.g. it refused the plugin's configuration).
    #[error("envoy exited before it was ready ({status})\n--- envoy log, last lines ---\n{log}")]
    EnvoyExited { status: String, log: String },
    /// Envoy did not become ready in time.
    #[error("envoy was not ready after {seconds} s\n--- envoy log, last lines ---\n{log}")]
    EnvoyTimeout { seconds: u64, log: String },
    /// `envoy --mode validate` refused a configuration.
    #[error("envoy refused the configuration {path}\n{output}")]
    Invalid { path: PathBuf, output: String },
    /// A reply that is not HTTP as expected.
    #[error("bad http: {0}")]
    Http(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("yaml: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("token: {0}")]
    Token(String),
    /// A helper script under `.venv/bin/python` exited with an error.
    #[error("{script} {what} failed ({status}): {stderr}")]
    Script {
        script: String,
        what: String,
        status: String,
        stderr: String,
    },
}

impl Error {
    /// The Envoy log carried by a start-up failure, if any.
    pub fn envoy_log(&self) -> Option<&str> {
        match self {
            Error::EnvoyExited { log, .. } | Error::EnvoyTimeout { log, .. } => Some(log),
            Error::Invalid { output, .. } => Some(output),
            _ => None,
        }
    }
}

/// Adds context to I/O errors.
pub(crate) trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, Error>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|source| Error::Io {
            context: what(),
            source,
        })
    }
}
