//! Signature checks a runtime does natively (Web Crypto in edge workers and browsers), with
//! the key and algorithm Bridle chose after every other check of the token passed.

use serde::Serialize;

/// One signature for the runtime to verify: `signature` over the bytes of `signing_input`
/// (the token's `header.payload`), with `jwk` and `alg`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureJob {
    pub alg: &'static str,
    pub jwk: serde_json::Value,
    pub signing_input: String,
    /// base64url, as in the token.
    pub signature: String,
}

/// What the runtime found, for the token whose digest it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureVerdict {
    pub token_digest: String,
    pub valid: bool,
}
