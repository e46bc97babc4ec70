//! Bridle's decision core: verify the workload identity, build the policy input, evaluate the
//! Rego policy, decide, and describe the decision as an audit event.
//!
//! Nothing here knows a host. Adapters (proxy-wasm, wasm-bindgen) collect a [`RequestView`],
//! call [`Authorizer::decide`] and enforce the [`Decision`].

pub mod audit;
pub mod authorizer;
pub mod config;
pub mod decision;
pub mod error;
pub mod host;
pub mod identity;
pub mod input;
pub mod policy;
pub mod request;

pub use audit::AuditEvent;
pub use authorizer::{Authorizer, Settings};
pub use decision::{Decision, Outcome};
pub use error::ConfigError;
pub use host::{AuditSink, Clock};
pub use request::{ConnectionFacts, RequestView};
pub mod compile;
pub mod delegation;
pub mod intent;
pub mod json_strict;
pub mod mcp;
pub mod route;
pub mod task;
pub mod tools_list;
