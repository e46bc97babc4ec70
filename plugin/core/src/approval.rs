//! Human approval bound to one action: the digest of what would be done, and the approval
//! credential that must carry exactly that digest, usable once.

use serde_json::{Map, Value};

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
    /// The decoded query, in request order.
    pub query: &'a [(String, String)],
    /// The exact body, where the route binds it.
    pub body: Option<&'a [u8]>,
}

/// A bound body is shown to the approver as text when it is UTF-8 and at most this long.
const SHOWN_BODY_BYTES: usize = 2048;

impl ApprovalRequest {
    pub fn new(action: &Action<'_>) -> Self {
        // Keys sorted (the map is ordered), a repeated key's values in request order:
        // `?b=1&a=2` and `?a=2&b=1` are one action, `?id=1&id=2` and `?id=2&id=1` are two.
        let mut query = Map::new();
        for (key, value) in action.query {
            if let Value::Array(values) = query
                .entry(key.as_str())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                values.push(Value::from(value.as_str()));
            }
        }
        let mut fields = Map::new();
        fields.insert("agent".into(), action.agent.into());
        fields.insert("task".into(), action.task.into());
        fields.insert("method".into(), action.method.into());
        fields.insert("host".into(), action.host.into());
        fields.insert("path".into(), action.path.into());
        fields.insert("query".into(), Value::Object(query));
        fields.insert("tool".into(), action.tool.into());
        fields.insert("arguments".into(), Value::Object(action.arguments.clone()));
        if let Some(body) = action.body {
            let mut bound = Map::new();
            let digest = crate::hex::lower(&hmac_sha256::Hash::hash(body));
            bound.insert("sha256".into(), digest.into());
            bound.insert("bytes".into(), body.len().into());
            let text = std::str::from_utf8(body)
                .ok()
                .filter(|_| body.len() <= SHOWN_BODY_BYTES);
            bound.insert("text".into(), text.into());
            fields.insert("body".into(), Value::Object(bound));
        }
        let action = Value::Object(fields);
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
    use serde_json::json;

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
            query: &[],
            body: None,
        };
        let one = ApprovalRequest::new(&base);
        assert_eq!(
            one.action.to_string(),
            r#"{"agent":"a","arguments":{"env":"prod","service":"web"},"host":"h","method":"POST","path":"/mcp","query":{},"task":"t","tool":"deploy"}"#
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

    #[test]
    fn the_query_binds_by_key_and_a_bound_body_by_its_exact_bytes() {
        let args = Map::new();
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let query = [pair("id", "1"), pair("b", "x"), pair("id", "2")];
        let action = |query: &[(String, String)], body: Option<&[u8]>| {
            ApprovalRequest::new(&Action {
                agent: "a",
                task: None,
                method: "POST",
                host: "h",
                path: "/api/payments",
                tool: None,
                arguments: &args,
                query,
                body,
            })
        };
        let bound = action(&query, Some(br#"{"amount": 10}"#));
        assert_eq!(bound.action["query"], json!({"b": ["x"], "id": ["1", "2"]}));
        assert_eq!(bound.action["body"]["text"], r#"{"amount": 10}"#);
        assert_eq!(bound.action["body"]["bytes"], 14);
        let reordered = [pair("b", "x"), pair("id", "1"), pair("id", "2")];
        assert_eq!(
            action(&reordered, Some(br#"{"amount": 10}"#)).digest,
            bound.digest
        );
        let swapped = [pair("b", "x"), pair("id", "2"), pair("id", "1")];
        for other in [
            action(&swapped, Some(br#"{"amount": 10}"#)),
            action(&query[..2], Some(br#"{"amount": 10}"#)),
            action(&query, Some(br#"{"amount": 11}"#)),
            action(&query, Some(br#"{"amount":10}"#)),
            action(&query, None),
        ] {
            assert_ne!(other.digest, bound.digest, "{}", other.action);
        }
        let large = vec![b'x'; SHOWN_BODY_BYTES + 1];
        assert_eq!(
            action(&[], Some(&large)).action["body"]["text"],
            Value::Null
        );
    }
}
