//! Bridle's decision core: verify the workload identity (and the task credential), build the
//! policy input, evaluate the Rego policy, decide, and describe the decision as an audit event.
//!
//! Nothing here knows a host. Adapters (proxy-wasm, wasm-bindgen) collect a [`RequestView`],
//! call [`Authorizer::decide`] with their [`Host`], and enforce the [`Decision`].

pub mod approval;
pub mod audit;
pub mod authorizer;
pub mod body;
pub mod bundle;
pub mod capabilities;
pub mod compile;
pub mod config;
pub mod control;
pub mod credentials;
pub mod decision;
pub mod delegation;
pub mod error;
pub mod hex;
pub mod host;
pub mod identity;
pub mod input;
pub mod input_reads;
pub mod intent;
pub mod json_strict;
pub mod mcp;
pub mod media_type;
pub mod metrics;
pub mod policy;
pub mod request;
pub mod revocation;
pub mod route;
#[cfg(feature = "schema")]
pub mod schema;
pub mod task;
pub mod tools_list;

pub use audit::AuditEvent;
pub use authorizer::{Authorizer, HostRefusal, Settings};
pub use capabilities::Capabilities;
pub use decision::{Decision, Outcome};
pub use error::ConfigError;
pub use host::{AuditSink, Clock, Host, MemoryOnceStore, Once, OnceStore};
pub use request::{ConnectionFacts, RequestView};
