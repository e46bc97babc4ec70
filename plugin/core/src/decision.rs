//! The answer the core gives a host: what to do with the request and what to tell the caller.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Forward the request.
    Allow,
    /// The caller is known but the policy refuses: 403.
    Deny,
    /// The policy wants a human approval for this exact action first: 403.
    ApprovalRequired,
    /// No acceptable credential: 401.
    Unauthenticated,
    /// The request cannot be judged safely (malformed path, ...): 400.
    BadRequest,
    /// The body is over the configured limit: 413.
    PayloadTooLarge,
    /// The host can only hold a body it knows the length of: 411.
    LengthRequired,
    /// The body is not sent in the one form Bridle reads it in (JSON as UTF-8, no content
    /// coding): 415.
    UnsupportedMediaType,
    /// The policy failed; never forwarded: 500.
    Error,
    /// A control input Bridle must trust is unavailable (stale revocation feed): 503.
    Unavailable,
}

impl Outcome {
    pub fn status(self) -> u16 {
        match self {
            Outcome::Allow => 200,
            Outcome::Deny | Outcome::ApprovalRequired => 403,
            Outcome::Unauthenticated => 401,
            Outcome::BadRequest => 400,
            Outcome::PayloadTooLarge => 413,
            Outcome::LengthRequired => 411,
            Outcome::UnsupportedMediaType => 415,
            Outcome::Error => 500,
            Outcome::Unavailable => 503,
        }
    }

    /// The `error` field of a refusal's JSON body.
    pub fn error_code(self) -> &'static str {
        match self {
            Outcome::Allow => "none",
            Outcome::Deny => "forbidden",
            Outcome::ApprovalRequired => "approval_required",
            Outcome::Unauthenticated => "unauthenticated",
            Outcome::BadRequest => "bad_request",
            Outcome::PayloadTooLarge => "payload_too_large",
            Outcome::LengthRequired => "length_required",
            Outcome::UnsupportedMediaType => "unsupported_media_type",
            Outcome::Error => "policy_error",
            Outcome::Unavailable => "unavailable",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::ApprovalRequired => "approval_required",
            Outcome::Unauthenticated => "unauthenticated",
            Outcome::BadRequest => "bad_request",
            Outcome::PayloadTooLarge => "payload_too_large",
            Outcome::LengthRequired => "length_required",
            Outcome::UnsupportedMediaType => "unsupported_media_type",
            Outcome::Error => "error",
            Outcome::Unavailable => "unavailable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub decision_id: String,
    pub reasons: Vec<String>,
    /// Headers to add to the forwarded request (from the policy, and the decision id).
    pub upstream_headers: Vec<(String, String)>,
    /// Request headers to remove before forwarding (the credential, unless configured otherwise).
    pub remove_headers: Vec<String>,
    /// Headers for the response to the caller, forwarded or local.
    pub response_headers: Vec<(String, String)>,
    /// Whether the token came from the verified-token cache; `None` when no token was checked.
    pub cache_hit: Option<bool>,
    /// Set when the response (an MCP `tools/list` result) must be filtered with
    /// [`crate::Authorizer::filter_tools_list`] before the caller sees it.
    pub tools_filter: Option<crate::tools_list::ToolsListFilter>,
    /// Set for `approval_required`: the action an approval must name.
    pub approval: Option<crate::approval::ApprovalRequest>,
    /// Dry run: the outcome is recorded, but the request is forwarded whatever it is.
    pub dry_run: bool,
    /// The audit event of this decision (already given to the host's audit sink), for hosts
    /// that also attach it to the stream. Serialized only by whoever needs it: most requests
    /// with the audit log off never pay for JSON.
    pub audit: crate::audit::AuditEvent,
    /// The revision of the policy that decided (bundle revision, or a digest of the inline policy).
    pub policy_revision: crate::audit::Shared,
}

#[derive(Serialize)]
struct RefusalBody<'a> {
    error: &'a str,
    reasons: &'a [String],
    decision_id: &'a str,
    policy_revision: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    action_digest: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'a serde_json::Value>,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        self.outcome == Outcome::Allow
    }

    /// Whether the host must forward the request: allowed, or any outcome in dry run.
    pub fn forwards(&self) -> bool {
        self.is_allowed() || self.dry_run
    }

    pub fn status(&self) -> u16 {
        self.outcome.status()
    }

    /// The JSON body of a local (refusal) response: `{error, reasons, decision_id}`.
    pub fn refusal_body(&self) -> String {
        serde_json::to_string(&RefusalBody {
            error: self.outcome.error_code(),
            reasons: &self.reasons,
            decision_id: &self.decision_id,
            policy_revision: &self.policy_revision,
            action_digest: self.approval.as_ref().map(|a| a.digest.as_str()),
            action: self.approval.as_ref().map(|a| &a.action),
        })
        // Serializing strings and a slice of strings cannot fail; keep a valid body regardless.
        .unwrap_or_else(|_| format!("{{\"error\":\"{}\"}}", self.outcome.error_code()))
    }
}
