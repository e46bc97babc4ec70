//! The request path: route → caller → revocation → task → delegation → intent → input →
//! policy → approval.

use std::rc::Rc;

use super::{Authorizer, CachedIdentity, Refusal, Trace};
use crate::approval::{Action, ApprovalError, ApprovalRequest};
use crate::credentials;
use crate::decision::Outcome;
use crate::delegation::{self, Chain, DelegationError};
use crate::host::{Host, Once};
use crate::identity::verify::quote;
use crate::identity::TokenError;
use crate::input;
use crate::input_reads::{InputReads, Part};
use crate::intent;
use crate::mcp::McpError;
use crate::policy::PolicyDecision;
use crate::request::{parse_path, RequestView};
use crate::task::{TaskError, VerifiedTask};
use crate::tools_list::ToolsListFilter;

impl Authorizer {
    pub(super) fn evaluate(
        &mut self,
        request: &RequestView,
        now: u64,
        trace: &mut Trace,
        host: &mut dyn Host,
    ) -> Result<PolicyDecision, Refusal> {
        let parsed = parse_path(&request.path)
            .map_err(|err| Refusal(Outcome::BadRequest, err.to_string()))?;
        let route = intent::match_route(&self.routes, &request.method, &parsed);
        let route_settings = route.as_ref().and_then(|(i, _)| self.routes.get(*i));
        trace.dry_run = route_settings.is_some_and(|r| r.dry_run);
        let bind_body = route_settings.is_some_and(|r| r.bind_body);
        let fresh_revocations = route_settings.and_then(|r| r.fresh_revocations);
        let required_by = route_settings
            .filter(|r| r.require_task)
            .map(|r| r.name.clone());

        let identity = self.caller(request, now, trace)?;
        self.check_feed(now, fresh_revocations)?;
        self.check_revoked(&identity)?;
        let caller: &str = &identity.caller;
        let task = self.task(request, now, required_by, caller, trace)?;
        let chain = self.delegation(&identity, task.as_deref(), trace)?;

        let route = route.and_then(|(i, captures)| self.routes.get(i).map(|r| (r, captures)));
        let intent = intent::build(request, route, &self.mcp).map_err(|err| {
            let outcome = match err {
                McpError::Encoding(_) => Outcome::UnsupportedMediaType,
                _ => Outcome::BadRequest,
            };
            Refusal(outcome, err.to_string())
        })?;
        let filters_tools_list =
            self.mcp.filter_tools_list && intent.rpc_method.as_deref() == Some("tools/list");
        // A tools/list response is filtered later, perhaps under a newer policy that reads
        // more: its document is built whole.
        let reads = match &self.policy {
            Some(policy) if !filters_tools_list => policy.reads(),
            _ => InputReads::ALL,
        };
        let wants = |part| reads.reads(part);
        let document = input::document(input::Parts {
            identity: wants(Part::Identity).then(|| identity.input.clone()),
            request: reads
                .reads_request()
                .then(|| input::request(request, &parsed, &self.hidden_headers, reads)),
            connection: wants(Part::Connection).then(|| input::connection(request)),
            environment: wants(Part::Environment).then(|| self.environment.clone()),
            task: task
                .as_ref()
                .filter(|_| wants(Part::Task))
                .map(|t| t.input.clone()),
            delegation: wants(Part::Delegation).then(|| input::delegation(chain.as_ref())),
            intent: wants(Part::Intent).then(|| input::intent(&intent)),
        });
        if filters_tools_list {
            trace.tools_filter = Some(ToolsListFilter {
                input: document.clone(),
                route: intent.route.clone(),
            });
        }
        let policy = self.policy.as_mut().ok_or_else(|| {
            Refusal(
                Outcome::Unavailable,
                "no policy is active yet: waiting for the first verified bundle".to_owned(),
            )
        })?;
        let decision = policy
            .evaluate(document)
            .map_err(|err| Refusal(Outcome::Error, err.to_string()));
        let decision = match decision {
            Ok(d) if d.approval_required => {
                let approval_request = ApprovalRequest::new(&Action {
                    agent: caller,
                    task: task.as_ref().map(|t| t.txn.as_str()),
                    method: &request.method,
                    host: &request.authority,
                    path: &parsed.path,
                    tool: intent.tool.as_deref(),
                    arguments: &intent.arguments,
                    query: &parsed.query,
                    body: bind_body.then(|| request.body.as_deref().unwrap_or_default()),
                });
                let result = self.check_approval(request, d, &approval_request, now, trace, host);
                trace.approval_request = Some(approval_request);
                result
            }
            other => other,
        };
        trace.intent = Some(intent);
        decision
    }

    /// The verified caller, its inventory owner in the trace; a delegated credential's actor
    /// bound to the party the host proves presents it.
    fn caller(
        &mut self,
        request: &RequestView,
        now: u64,
        trace: &mut Trace,
    ) -> Result<Rc<CachedIdentity>, Refusal> {
        let identity = self
            .authenticate(request, now, &mut trace.cache_hit)
            .map_err(Refusal::credential)?;
        let mut agent = identity.agent.clone();
        agent.owner = self.inventory.owners.get(&*identity.caller).cloned();
        agent.cache_hit = trace.cache_hit.unwrap_or(false);
        trace.agent = Some(agent);
        // Where the host proves who presents the credential, a delegated credential's actor
        // is that party: a copied credential does not work from another workload.
        if let (Some(actor), Some(peer)) = (&identity.token.actor, &request.connection.peer_uri_san)
        {
            if actor != peer {
                return Err(Refusal::unauthenticated(DelegationError::ActorIsNotPeer {
                    actor: quote(actor),
                    peer: quote(peer),
                }));
            }
        }
        Ok(identity)
    }

    fn check_revoked(&self, identity: &CachedIdentity) -> Result<(), Refusal> {
        if let Some(jti) = identity
            .token
            .jti
            .as_deref()
            .filter(|j| self.revocations.jti_revoked(j))
        {
            return Err(Refusal::unauthenticated(format!(
                "token `{}` is revoked",
                quote(jti)
            )));
        }
        let caller: &str = &identity.caller;
        if self.revocations.agent_revoked(caller) {
            return Err(Refusal::forbidden(format!("agent `{caller}` is revoked")));
        }
        Ok(())
    }

    /// The task credential, verified, not revoked and bound to the caller; required where the
    /// route (named by `required_by`) says so.
    fn task(
        &mut self,
        request: &RequestView,
        now: u64,
        required_by: Option<String>,
        caller: &str,
        trace: &mut Trace,
    ) -> Result<Option<Rc<VerifiedTask>>, Refusal> {
        let Some(settings) = self.task.as_mut() else {
            return Ok(None);
        };
        let value = credentials::single_header(request, &settings.header)
            .map_err(Refusal::unauthenticated)?;
        let Some(value) = value else {
            return match required_by {
                Some(route) => Err(Refusal::unauthenticated(TaskError::Required {
                    route,
                    header: settings.header.clone(),
                })),
                None => Ok(None),
            };
        };
        let (task, _) = settings
            .verify(value.trim(), now)
            .map_err(|err| match &err {
                TaskError::Invalid(TokenError::KeysUnavailable { .. }) => {
                    Refusal(Outcome::Unavailable, err.to_string())
                }
                _ => Refusal::unauthenticated(err),
            })?;
        trace.task = Some(task.txn.clone());
        if self.revocations.txn_revoked(&task.txn) {
            return Err(Refusal::unauthenticated(format!(
                "task `{}` is revoked",
                task.txn
            )));
        }
        if let Some(jti) = task
            .token
            .jti
            .as_deref()
            .filter(|j| self.revocations.jti_revoked(j))
        {
            return Err(Refusal::unauthenticated(format!(
                "task credential `{}` is revoked",
                quote(jti)
            )));
        }
        settings
            .check_binding(&task, caller)
            .map_err(Refusal::forbidden)?;
        Ok(Some(task))
    }

    /// The delegation chain (the task credential's, else the workload credential's): `may_act`
    /// allows its current actor, that actor is the caller, and authority only narrows along it.
    fn delegation(
        &self,
        identity: &CachedIdentity,
        task: Option<&VerifiedTask>,
        trace: &mut Trace,
    ) -> Result<Option<Chain>, Refusal> {
        let token = &identity.token;
        let caller: &str = &identity.caller;
        // Authority comes from the task credential when there is one, else from the identity.
        let (authority_claims, exercised) = match task {
            Some(task) => (&task.token.claims, task.scopes.clone()),
            None => (&token.claims, delegation::scopes(token.claims.get("scope"))),
        };
        // A delegated workload credential names its caller in `act`; its chain holds even when
        // a task credential carries the authority (and a chain of its own).
        let identity_chain = Chain::from_claims(&token.claims, self.max_delegation_depth)
            .map_err(Refusal::forbidden)?;
        let chain = match task {
            Some(task) => {
                if let Some(chain) = &identity_chain {
                    delegation::check_may_act(&token.claims, chain.current_actor())
                        .map_err(Refusal::forbidden)?;
                }
                Chain::from_claims(&task.token.claims, self.max_delegation_depth)
                    .map_err(Refusal::forbidden)?
                    .or(identity_chain)
            }
            None => identity_chain,
        };
        delegation::check_may_act(
            authority_claims,
            chain.as_ref().map_or(caller, Chain::current_actor),
        )
        .map_err(Refusal::forbidden)?;
        if let Some(chain) = &chain {
            trace.delegation = chain.chain.iter().map(|a| a.sub.clone()).collect();
            if chain.current_actor() != caller {
                return Err(Refusal::forbidden(DelegationError::ActorIsNotCaller {
                    actor: chain.current_actor().to_owned(),
                    caller: caller.to_owned(),
                }));
            }
            let inventory = &self.inventory.scopes;
            chain
                .check_attenuation(exercised.as_ref(), &|sub: &str| inventory.get(sub).cloned())
                .map_err(Refusal::forbidden)?;
        }
        Ok(chain)
    }

    /// A policy asked for approval: an approval credential for exactly this action turns the
    /// answer into an allow, once.
    pub(super) fn check_approval(
        &self,
        request: &RequestView,
        mut decision: PolicyDecision,
        approval_request: &ApprovalRequest,
        now: u64,
        trace: &mut Trace,
        host: &mut dyn Host,
    ) -> Result<PolicyDecision, Refusal> {
        let Some(settings) = &self.approval else {
            return Ok(decision);
        };
        let Some(token) =
            credentials::single_header(request, &settings.header).map_err(Refusal::forbidden)?
        else {
            return Ok(decision);
        };
        let approval = match settings.verify(token.trim(), approval_request, now) {
            Ok(approval) => approval,
            Err(err) => {
                decision.reasons.push(err.to_string());
                return Ok(decision);
            }
        };
        // The raw issuer and `jti`, hashed: exact, unambiguous and of bounded length whatever
        // the claim holds.
        let mut hasher = hmac_sha256::Hash::new();
        hasher.update(approval.issuer.as_bytes());
        hasher.update([0]);
        hasher.update(approval.jti.as_bytes());
        let key = format!("approval:{}", crate::hex::lower(&hasher.finalize()));
        let until = approval
            .expires_at
            .saturating_add(self.verifier.skew_seconds());
        match host.use_once(&key, until, now) {
            Once::First => {
                trace.approved_by = Some(approval.approver.clone());
                Ok(PolicyDecision {
                    allow: true,
                    approval_required: false,
                    reasons: vec![format!("approved by {}", approval.approver)],
                    headers: Vec::new(),
                })
            }
            Once::Replayed => Err(Refusal::forbidden(ApprovalError::Replayed(approval.jti))),
            Once::Unavailable => Err(Refusal(
                Outcome::Error,
                ApprovalError::StoreUnavailable.to_string(),
            )),
        }
    }
}
