//! Human approval bound to one action: the digest of what would be done, and the approval
//! credential that must carry exactly that digest, usable once.

use serde_json::{json, Map, Value};

use crate::identity::{TokenError, TokenVerifier, VerifiedToken};

/// What an approval service shows a human, and the digest an approval must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub action: Value,
    pub digest: String,
}

/// The action as a canonical JSON object: keys sorted at every depth (serde_json's map is
/// ordered), no insignificant whitespace.
pub struct Action<'a> {
    pub agent: &'a str,
    pub task: Option<&'a str>,
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub tool: Option<&'a str>,
    pub arguments: &'a Map<String, Value>,
}

impl ApprovalRequest {
    pub fn new(action: &Action<'_>) -> Self {
        let action = json!({
            "agent": action.agent,
            "task": action.task,
            "method": action.method,
            "host": action.host,
            "path": action.path,
            "tool": action.tool,
            "arguments": action.arguments,
        });
        let canonical = action.to_string();
        let digest = crate::hex::lower(&hmac_sha256::Hash::hash(canonical.as_bytes()));
        Self { action, digest }
    }
}

pub struct ApprovalSettings {
    pub header: String,
    pub verifier: TokenVerifier,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("approval credential: {0}")]
    Invalid(TokenError),
    #[error("approval credential has no `jti`")]
    NoJti,
    #[error("approval credential approves another action (digest mismatch)")]
    OtherAction,
    #[error("approval `{}` was already used", crate::identity::verify::quote(.0))]
    Replayed(String),
    #[error("approval replay store is unavailable")]
    StoreUnavailable,
}

/// A verified approval for the request's action.
pub struct Approval {
    pub approver: String,
    pub jti: String,
    pub expires_at: u64,
    pub issuer: String,
}

impl ApprovalSettings {
    /// Verifies `token` and checks it approves `request`. Replay is checked by the caller,
    /// which holds the host's once-store.
    pub fn verify(
        &self,
        token: &str,
        request: &ApprovalRequest,
        now: u64,
    ) -> Result<Approval, ApprovalError> {
        let verified: VerifiedToken = self
            .verifier
            .verify(token, now)
            .map_err(ApprovalError::Invalid)?;
        let jti = verified.jti.clone().ok_or(ApprovalError::NoJti)?;
        let digest = verified.claims.get("action_digest").and_then(Value::as_str);
        if digest != Some(request.digest.as_str()) {
            return Err(ApprovalError::OtherAction);
        }
        let approver = verified
            .claims
            .get("approver")
            .and_then(Value::as_str)
            .or(verified.subject.as_deref())
            .unwrap_or_default()
            .chars()
            .take(128)
            .collect();
        Ok(Approval {
            approver,
            jti,
            expires_at: verified.expires_at,
            issuer: verified.issuer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_canonical_and_binds_every_part_of_the_action() {
        let mut args = Map::new();
        args.insert("service".into(), json!("web"));
        args.insert("env".into(), json!("prod"));
        let base = Action {
            agent: "a",
            task: Some("t"),
            method: "POST",
            host: "h",
            path: "/mcp",
            tool: Some("deploy"),
            arguments: &args,
        };
        let one = ApprovalRequest::new(&base);
        assert_eq!(
            one.action.to_string(),
            r#"{"agent":"a","arguments":{"env":"prod","service":"web"},"host":"h","method":"POST","path":"/mcp","task":"t","tool":"deploy"}"#
        );
        assert_eq!(one.digest.len(), 64);
        let mut other_args = args.clone();
        other_args.insert("env".into(), json!("staging"));
        for changed in [
            Action { agent: "b", ..base },
            Action { task: None, ..base },
            Action {
                tool: Some("delete"),
                ..base
            },
            Action {
                path: "/mcp2",
                ..base
            },
            Action {
                arguments: &other_args,
                ..base
            },
        ] {
            assert_ne!(ApprovalRequest::new(&changed).digest, one.digest);
        }
    }
}
