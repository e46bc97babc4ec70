//! Turning a result into the host's answer: outcome, headers for the upstream and the
//! client, the audit event; and filtering a `tools/list` response.

use std::collections::BTreeMap;

use regorus::Value;

use super::{Authorizer, Refusal, Trace};
use crate::audit::{self, AgentRef, AuditEvent, PolicyRef, RequestRef};
use crate::config::{ArgumentsInAudit, Protocol};
use crate::decision::{Decision, Outcome};
use crate::host::Host;
use crate::input;
use crate::intent;
use crate::policy::{valid_header_value, PolicyDecision};
use crate::request::RequestView;
use crate::tools_list::{self, ToolsListFilter, Unfiltered};

impl Authorizer {
    pub(super) fn finish(
        &mut self,
        request: &RequestView,
        result: Result<PolicyDecision, Refusal>,
        trace: Trace,
        started: u64,
        host: &mut dyn Host,
    ) -> Decision {
        let mut trace = trace;
        let (outcome, reasons, policy_headers) = match result {
            Ok(d) if d.allow => (Outcome::Allow, d.reasons, d.headers),
            Ok(d) if d.approval_required => (Outcome::ApprovalRequired, d.reasons, Vec::new()),
            Ok(d) if d.reasons.is_empty() => (
                Outcome::Deny,
                vec!["denied by policy".to_owned()],
                Vec::new(),
            ),
            Ok(d) => (Outcome::Deny, d.reasons, Vec::new()),
            Err(Refusal(outcome, reason)) => (outcome, vec![reason], Vec::new()),
        };
        let decision_id = self.next_decision_id();
        let mut upstream_headers = Vec::new();
        let mut remove_headers = Vec::new();
        let mut response_headers = Vec::new();
        let mut tools_filter = None;
        let mut approval = None;
        let mut decision_dry_run = false;
        let dry_run = self.dry_run || trace.dry_run;
        let id_header = (
            self.settings.decision_id_header.clone(),
            decision_id.clone(),
        );
        response_headers.push(id_header.clone());
        // A dry run forwards whatever the outcome, like an allow without the policy's headers;
        // requests that cannot be read safely (400, 411, 413, 415) and the host's own refusals
        // are still refused.
        if dry_run
            && !trace.by_host
            && !matches!(
                outcome,
                Outcome::Allow
                    | Outcome::BadRequest
                    | Outcome::PayloadTooLarge
                    | Outcome::LengthRequired
                    | Outcome::UnsupportedMediaType
            )
        {
            decision_dry_run = true;
            (upstream_headers, remove_headers) =
                self.forward_headers(request, trace.agent.as_ref(), Vec::new(), &id_header);
        }
        match outcome {
            Outcome::Allow => {
                tools_filter = trace.tools_filter.take();
                (upstream_headers, remove_headers) =
                    self.forward_headers(request, trace.agent.as_ref(), policy_headers, &id_header);
                decision_dry_run = dry_run;
            }
            Outcome::Unauthenticated => {
                let challenge = self.challenge(&reasons);
                response_headers.push(("www-authenticate".to_owned(), challenge));
            }
            Outcome::ApprovalRequired => approval = trace.approval_request.clone(),
            Outcome::Deny
            | Outcome::BadRequest
            | Outcome::PayloadTooLarge
            | Outcome::LengthRequired
            | Outcome::UnsupportedMediaType
            | Outcome::Error
            | Outcome::Unavailable => {}
        }
        let mut intent_ref = trace.intent.as_ref().map(audit::IntentRef::from);
        if let (Some(intent_ref), Some(intent)) = (intent_ref.as_mut(), trace.intent.as_ref()) {
            if self.audit.arguments == ArgumentsInAudit::Include {
                let mut arguments = serde_json::Value::Object(intent.arguments.clone());
                audit::mask(&mut arguments, &self.audit.mask);
                if let serde_json::Value::Object(arguments) = arguments {
                    intent_ref.arguments = Some(arguments);
                }
            }
        }
        let finished = host.now_unix_nanos();
        let event = AuditEvent {
            kind: "bridle.decision",
            decision_id: decision_id.clone(),
            time: audit::rfc3339(started),
            outcome,
            status: outcome.status(),
            reasons: reasons.clone(),
            agent: trace.agent,
            task: trace.task,
            delegation: trace.delegation,
            intent: intent_ref,
            action_digest: trace.approval_request.as_ref().map(|a| a.digest.clone()),
            approved_by: trace.approved_by.clone(),
            request: RequestRef {
                method: request.method.clone(),
                authority: request.authority.clone(),
                path: request
                    .path
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            },
            policy: PolicyRef {
                entrypoint: self.policy_source.entrypoint.clone(),
                source: self.policy_source.kind,
                revision: self.policy_source.revision.clone(),
            },
            latency_us: finished.saturating_sub(started) / 1_000,
            dry_run: decision_dry_run,
        };
        host.record(&event);
        Decision {
            outcome,
            decision_id,
            reasons,
            upstream_headers,
            remove_headers,
            response_headers,
            cache_hit: trace.cache_hit,
            tools_filter,
            approval,
            dry_run: decision_dry_run,
            policy_revision: self.policy_source.revision.clone(),
            audit: event,
        }
    }

    /// The headers a forwarded request gets and loses: the caller's copies of reserved
    /// headers and its credentials go; Bridle's identity headers, the policy's headers and the
    /// decision id are set, in that order (a later one replaces an earlier one).
    pub(super) fn forward_headers(
        &self,
        request: &RequestView,
        agent: Option<&AgentRef>,
        policy_headers: Vec<(String, String)>,
        id_header: &(String, String),
    ) -> (Vec<(String, String)>, Vec<String>) {
        let mut remove = self.credential_headers();
        remove.extend(
            request
                .headers
                .iter()
                .filter(|(name, _)| name.starts_with(&self.reserved_prefix))
                .map(|(name, _)| name.clone()),
        );
        let mut set = Vec::with_capacity(policy_headers.len() + 3);
        if let Some(agent) = agent {
            let caller = agent.spiffe_id.as_ref().or(agent.subject.as_ref());
            let (agent_header, owner_header) = &self.identity_headers;
            // A subject that could break the header is left out rather than altered.
            for (name, value) in [(agent_header, caller), (owner_header, agent.owner.as_ref())] {
                if let Some(value) = value.filter(|v| valid_header_value(v)) {
                    set.push((name.clone(), value.to_string()));
                }
            }
        }
        set.extend(policy_headers);
        set.push(id_header.clone());
        (set, remove)
    }

    /// Credential headers never forwarded upstream, unless configured otherwise.
    pub(super) fn credential_headers(&self) -> Vec<String> {
        let mut headers = Vec::new();
        if !self.settings.forward_credential {
            headers.push(self.settings.credential_header.clone());
        }
        if let Some(payload_header) = &self.settings.host_payload_header {
            headers.push(payload_header.clone());
        }
        if let Some(task) = self.task.as_ref().filter(|t| !t.forward) {
            headers.push(task.header.clone());
        }
        if let Some(approval) = &self.approval {
            headers.push(approval.header.clone());
        }
        headers
    }

    /// RFC 6750 challenge: no error code when no credential was sent at all.
    pub(super) fn challenge(&self, reasons: &[String]) -> String {
        let realm = &self.settings.realm;
        match reasons.first() {
            Some(reason) if !reason.starts_with("no credential") => {
                let description: String = reason
                    .chars()
                    .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
                    .collect();
                format!("Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{description}\"")
            }
            _ => format!("Bearer realm=\"{realm}\""),
        }
    }

    /// Filters a `tools/list` response down to the tools the policy would let this caller
    /// call (with no arguments). A response that cannot be read is replaced by a JSON-RPC
    /// error rather than passed through unfiltered.
    pub fn filter_tools_list(
        &mut self,
        filter: &ToolsListFilter,
        body: &[u8],
        content_type: &str,
    ) -> Vec<u8> {
        let mut policy = self.policy.as_mut();
        let mcp = &self.mcp;
        let mut keep = |tool: &str| {
            let annotation = mcp.tools.get(tool).unwrap_or(&mcp.unknown_tool);
            let intent = intent::Intent {
                protocol: Protocol::Mcp,
                route: filter.route.clone(),
                action: annotation.action,
                resource: None,
                params: BTreeMap::new(),
                rpc_method: Some("tools/call".to_owned()),
                tool: Some(tool.to_owned()),
                arguments: serde_json::Map::new(),
                data_class: Some(annotation.data_class.clone()),
            };
            let mut document = filter.input.clone();
            match document.as_object_mut() {
                Ok(fields) => {
                    fields.insert(Value::from("intent"), input::intent(&intent));
                }
                Err(_) => return false,
            }
            policy.as_mut().is_some_and(|p| {
                p.evaluate(document)
                    .is_ok_and(|d| d.allow || d.approval_required)
            })
        };
        tools_list::filter_body(body, content_type, &mut keep)
            .unwrap_or_else(|err| Unfiltered::Unreadable(err).body())
    }
}
