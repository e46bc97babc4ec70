//! Workload identity: who is calling, proven by a verified token.

pub mod cache;
pub mod claims;
pub mod key_set;
pub mod keys;
pub mod native;
pub mod spiffe;
pub mod verify;

pub use spiffe::SpiffeId;
pub use verify::{TokenError, TokenVerifier, VerifiedToken};
