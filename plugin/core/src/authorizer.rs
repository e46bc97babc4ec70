//! The decision pipeline: verify → build input → evaluate → decide → audit.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use regorus::Value;

use crate::approval::{Action, ApprovalError, ApprovalRequest, ApprovalSettings};
use crate::audit::{self, AgentRef, AuditEvent, PolicyRef, RequestRef, Shared};
use crate::bundle::{BundleError, BundleSettings};
use crate::compile::{self, Mcp, Route};
use crate::config::{self, RawConfig};
use crate::credentials;
use crate::decision::{Decision, Outcome};
use crate::delegation::Chain;
use crate::error::ConfigError;
use crate::host::{Host, Once};
use crate::identity::cache::TokenCache;
use crate::identity::native::{SignatureJob, SignatureVerdict};
use crate::identity::verify::{quote, token_digest};
use crate::identity::{TokenError, TokenVerifier, VerifiedToken};
use crate::input;
use crate::input_reads::{InputReads, Part};
use crate::intent;
use crate::policy::{valid_header_name, valid_header_value, Policy};
use crate::request::{parse_path, RequestView};
use crate::revocation::{FeedError, RevocationState, Revocations};
use crate::task::{TaskError, TaskSettings};

const MAX_CLOCK_SKEW_SECONDS: u64 = 300;
const MAX_TOKEN_BYTES_LIMIT: usize = 64 * 1024;
const MAX_DELEGATION_DEPTH: usize = 16;
/// Native signature checks in flight at once (a browser or worker isolate's concurrency).
const MAX_SIGNATURE_JOBS: usize = 256;

/// Host-facing settings the adapters need to collect and enforce.
#[derive(Debug, Clone)]
pub struct Settings {
    pub credential_header: String,
    pub scheme: String,
    pub forward_credential: bool,
    pub decision_id_header: String,
    pub realm: String,
    pub peer_uri_san: bool,
    /// When set, the adapter reads this host property into [`RequestView::host_verified`].
    pub host_proof_property: Option<Vec<String>>,
    /// The header where the host forwards the verified payload.
    pub host_payload_header: Option<String>,
}

struct CachedIdentity {
    token: VerifiedToken,
    input: Value,
    /// The token's part of every audit event; `owner` and `cache_hit` are set per decision.
    agent: AgentRef,
    /// The SPIFFE ID, else the subject: whom revocations, bindings and the inventory name.
    caller: Shared,
}

/// Why a host's adapter refuses a request before the core can decide it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRefusal {
    /// The body is over the route's limit (413).
    TooLarge { limit: usize },
    /// The host cannot hold a body of unknown length for the decision (411).
    LengthRequired { host: &'static str },
    /// The configuration needs what this host lacks, found only once the host is known (503).
    Unsupported(ConfigError),
}

/// An early answer: why, and with which outcome, a request was refused before policy ran.
struct Refusal(Outcome, String);

impl Refusal {
    fn unauthenticated(reason: impl ToString) -> Self {
        Refusal(Outcome::Unauthenticated, reason.to_string())
    }
    fn forbidden(reason: impl ToString) -> Self {
        Refusal(Outcome::Deny, reason.to_string())
    }
}

/// What `evaluate` learnt along the way, for the decision and the audit event.
#[derive(Default)]
struct Trace {
    agent: Option<AgentRef>,
    cache_hit: Option<bool>,
    task: Option<String>,
    intent: Option<intent::Intent>,
    delegation: Vec<String>,
    tools_filter: Option<crate::tools_list::ToolsListFilter>,
    approval_request: Option<ApprovalRequest>,
    /// A refusal the host's adapter asked for: never forwarded, not even in a dry run.
    by_host: bool,
    approved_by: Option<String>,
    dry_run: bool,
}

pub struct Authorizer {
    settings: Settings,
    verifier: TokenVerifier,
    cache: TokenCache<CachedIdentity>,
    task: Option<TaskSettings>,
    approval: Option<ApprovalSettings>,
    routes: Vec<Route>,
    mcp: Mcp,
    max_delegation_depth: usize,
    inventory: compile::Inventory,
    /// `None` only while a bundle-only configuration waits for its first bundle.
    policy: Option<Policy>,
    policy_source: PolicySource,
    bundle: Option<BundleSettings>,
    environment: Value,
    revocations: RevocationState,
    audit: crate::config::RawAudit,
    dry_run: bool,
    feed: Option<crate::config::RawFeed>,
    /// When this authorizer first decided: the staleness of a feed that has not answered yet
    /// is counted from here.
    first_decision_at: Option<u64>,
    id_prefix: String,
    next_id: u64,
    /// Digests of tokens whose signature the runtime was asked to check natively.
    signature_jobs: BTreeSet<String>,
    /// The runtime's verdict for the request being decided.
    verdict: Option<SignatureVerdict>,
    /// Every configured credential's header: never in `input.request.headers`.
    hidden_headers: Vec<String>,
    /// Request headers with this prefix reach the upstream only as Bridle sets them.
    reserved_prefix: String,
    /// `<prefix>agent` and `<prefix>agent-owner`.
    identity_headers: (String, String),
}

/// What recompiling a policy from a bundle needs, and which policy decides now.
struct PolicySource {
    entrypoint: Shared,
    max_instructions: usize,
    inventory: Option<String>,
    /// `bundle` or `config`.
    kind: &'static str,
    revision: Shared,
    activated_at: Option<u64>,
    /// The active bundle's signed `iat`; `None` before the first bundle.
    issued_at: Option<u64>,
}

/// A short digest naming an inline policy, so audit events of different configurations differ.
fn config_revision(policy: &crate::config::RawPolicy) -> String {
    let mut hasher = hmac_sha256::Hash::new();
    for module in &policy.modules {
        hasher.update(module.name.as_bytes());
        hasher.update([0]);
        hasher.update(module.source.as_bytes());
        hasher.update([0]);
    }
    hasher.update(
        serde_json::Value::Object(policy.data.clone())
            .to_string()
            .as_bytes(),
    );
    let digest = hasher.finalize();
    format!(
        "sha256:{}",
        crate::hex::lower(digest.get(..8).unwrap_or_default())
    )
}

fn header_name(value: &str, field: &str) -> Result<String, ConfigError> {
    let name = value.to_ascii_lowercase();
    if valid_header_name(&name) {
        Ok(name)
    } else {
        Err(ConfigError::invalid(
            field,
            format!("`{value}` is not an HTTP header name"),
        ))
    }
}

impl Authorizer {
    /// Parses, validates and compiles a configuration. `id_seed` makes decision ids unique
    /// across workers; the host supplies it from its randomness or clock.
    pub fn from_json(bytes: &[u8], id_seed: u64) -> Result<Self, ConfigError> {
        Self::from_config(config::parse(bytes)?, id_seed)
    }

    /// [`Authorizer::from_json`] for a host with `capabilities`: a field the host cannot
    /// honour is refused, naming the field and the host.
    pub fn from_json_on(
        bytes: &[u8],
        id_seed: u64,
        capabilities: &crate::Capabilities,
    ) -> Result<Self, ConfigError> {
        let authorizer = Self::from_json(bytes, id_seed)?;
        capabilities.check(&authorizer)?;
        Ok(authorizer)
    }

    pub fn from_config(raw: RawConfig, id_seed: u64) -> Result<Self, ConfigError> {
        let identity = &raw.identity;
        let header = header_name(&identity.header, "identity.header")?;
        if identity.scheme.contains(char::is_whitespace) {
            return Err(ConfigError::invalid(
                "identity.scheme",
                "must be one word, such as `Bearer`, or empty",
            ));
        }
        if identity.clock_skew_seconds > MAX_CLOCK_SKEW_SECONDS {
            return Err(ConfigError::invalid(
                "identity.clock_skew_seconds",
                format!("must be at most {MAX_CLOCK_SKEW_SECONDS}"),
            ));
        }
        if identity.max_token_bytes == 0 || identity.max_token_bytes > MAX_TOKEN_BYTES_LIMIT {
            return Err(ConfigError::invalid(
                "identity.max_token_bytes",
                format!("must be between 1 and {MAX_TOKEN_BYTES_LIMIT}"),
            ));
        }
        let decision_id_header = header_name(
            &raw.response.decision_id_header,
            "response.decision_id_header",
        )?;
        if raw.response.realm.contains(['"', '\\'])
            || raw.response.realm.chars().any(char::is_control)
        {
            return Err(ConfigError::invalid(
                "response.realm",
                "must not contain quotes, backslashes or control characters",
            ));
        }
        let reserved_prefix = raw.reserved_header_prefix.to_ascii_lowercase();
        if !valid_header_name(&reserved_prefix) {
            return Err(ConfigError::invalid(
                "reserved_header_prefix",
                format!(
                    "`{}` is not the start of an HTTP header name",
                    raw.reserved_header_prefix
                ),
            ));
        }
        let skew = identity.clock_skew_seconds;
        let host_verification = identity.host_verification.clone();
        let host_payload_header = match &host_verification {
            None => None,
            Some(host) => {
                if host.proof_property.is_empty()
                    || host.proof_property.iter().any(String::is_empty)
                {
                    return Err(ConfigError::invalid(
                        "identity.host_verification.proof_property",
                        "must be a non-empty property path without empty segments",
                    ));
                }
                let name = header_name(
                    &host.payload_header,
                    "identity.host_verification.payload_header",
                )?;
                if name == header {
                    return Err(ConfigError::invalid(
                        "identity.host_verification.payload_header",
                        "must differ from identity.header",
                    ));
                }
                Some(name)
            }
        };
        let issuers = compile::issuers(&raw.issuers, "issuers", compile::IssuerRole::Workload)?;
        let task = match &raw.task {
            None => None,
            Some(task) => {
                let task_header = header_name(&task.header, "task.header")?;
                if task_header == header {
                    return Err(ConfigError::invalid(
                        "task.header",
                        "must differ from identity.header",
                    ));
                }
                if task.max_lifetime_seconds == 0 || task.max_lifetime_seconds > 24 * 3600 {
                    return Err(ConfigError::invalid(
                        "task.max_lifetime_seconds",
                        "must be between 1 and 86400",
                    ));
                }
                let issuers =
                    compile::issuers(&task.issuers, "task.issuers", compile::IssuerRole::Task)?;
                Some(TaskSettings {
                    header: task_header,
                    verifier: TokenVerifier::new(issuers, skew, identity.max_token_bytes)
                        .with_max_lifetime(task.max_lifetime_seconds),
                    binding: task.binding,
                    forward: task.forward,
                    cache: TokenCache::new(identity.cache_entries),
                })
            }
        };
        let approval = match &raw.approval {
            None => None,
            Some(approval) => {
                let approval_header = header_name(&approval.header, "approval.header")?;
                if approval_header == header {
                    return Err(ConfigError::invalid(
                        "approval.header",
                        "must differ from identity.header",
                    ));
                }
                if approval.max_lifetime_seconds == 0 || approval.max_lifetime_seconds > 3600 {
                    return Err(ConfigError::invalid(
                        "approval.max_lifetime_seconds",
                        "must be between 1 and 3600",
                    ));
                }
                let issuers = compile::issuers(
                    &approval.issuers,
                    "approval.issuers",
                    compile::IssuerRole::Approval,
                )?;
                Some(ApprovalSettings {
                    header: approval_header,
                    verifier: TokenVerifier::new(issuers, skew, identity.max_token_bytes)
                        .with_max_lifetime(approval.max_lifetime_seconds),
                })
            }
        };
        let routes = compile::routes(&raw.routes)?;
        if task.is_none() {
            if let Some(index) = routes.iter().position(|r| r.require_task) {
                return Err(ConfigError::invalid(
                    format!("routes[{index}].require_task"),
                    "needs a `task` block that says how task credentials are verified",
                ));
            }
        }
        if raw.delegation.max_depth == 0 || raw.delegation.max_depth > MAX_DELEGATION_DEPTH {
            return Err(ConfigError::invalid(
                "delegation.max_depth",
                format!("must be between 1 and {MAX_DELEGATION_DEPTH}"),
            ));
        }
        let bundle = raw
            .bundle
            .as_ref()
            .map(BundleSettings::compile)
            .transpose()?;
        // With a bundle, an empty `policy.modules` means: refuse until the first bundle.
        let (policy, inventory) = if bundle.is_some() && raw.policy.modules.is_empty() {
            if raw.policy.max_instructions == 0 {
                return Err(ConfigError::invalid(
                    "policy.max_instructions",
                    "must be greater than 0",
                ));
            }
            (None, compile::Inventory::default())
        } else {
            let inventory =
                compile::inventory(&raw.policy.data, raw.delegation.inventory.as_deref())?;
            (Some(Policy::compile(&raw.policy)?), inventory)
        };
        let policy_source = PolicySource {
            entrypoint: raw.policy.entrypoint.as_str().into(),
            max_instructions: raw.policy.max_instructions,
            inventory: raw.delegation.inventory.clone(),
            kind: "config",
            revision: config_revision(&raw.policy).into(),
            activated_at: None,
            issued_at: None,
        };
        if let Some(collector) = &raw.audit.collector {
            audit::check_collector(collector)?;
        }
        let feed = raw.revocation.feed.clone();
        if let Some(feed) = &feed {
            crate::revocation::check_feed(feed)?;
        }
        let revocations = RevocationState::new(Revocations {
            txn: raw.revocation.txn.iter().cloned().collect(),
            jti: raw.revocation.jti.iter().cloned().collect(),
            agents: raw.revocation.agents.iter().cloned().collect(),
        });
        let settings = Settings {
            credential_header: header,
            scheme: identity.scheme.clone(),
            forward_credential: identity.forward_credential,
            decision_id_header,
            realm: raw.response.realm.clone(),
            peer_uri_san: raw.connection.peer_uri_san,
            host_proof_property: host_verification.as_ref().map(|h| h.proof_property.clone()),
            host_payload_header,
        };
        let mut hidden_headers = vec![settings.credential_header.clone()];
        hidden_headers.extend(settings.host_payload_header.clone());
        hidden_headers.extend(task.as_ref().map(|t| t.header.clone()));
        hidden_headers.extend(approval.as_ref().map(|a| a.header.clone()));
        Ok(Self {
            hidden_headers,
            identity_headers: (
                format!("{reserved_prefix}agent"),
                format!("{reserved_prefix}agent-owner"),
            ),
            reserved_prefix,
            verifier: TokenVerifier::new(issuers, skew, identity.max_token_bytes),
            cache: TokenCache::new(identity.cache_entries),
            task,
            approval,
            routes,
            mcp: compile::mcp(raw.mcp)?,
            max_delegation_depth: raw.delegation.max_depth,
            inventory,
            policy,
            policy_source,
            bundle,
            environment: Value::from(serde_json::Value::Object(raw.environment)),
            revocations,
            audit: raw.audit.clone(),
            dry_run: raw.dry_run,
            feed,
            first_decision_at: None,
            settings,
            id_prefix: format!("{id_seed:016x}"),
            next_id: 0,
            signature_jobs: BTreeSet::new(),
            verdict: None,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The revocation feed the host must poll, if any.
    pub fn revocation_feed(&self) -> Option<&crate::config::RawFeed> {
        self.feed.as_ref()
    }

    /// Applies a revocation feed document fetched by the host at `now` (unix seconds).
    pub fn apply_revocation_feed(&mut self, body: &[u8], now: u64) -> Result<u64, FeedError> {
        self.revocations.apply(body, now)
    }

    /// The bundle the host must fetch, if any.
    pub fn bundle_source(&self) -> Option<&crate::config::RawBundle> {
        self.bundle.as_ref().map(|b| &b.source)
    }

    /// Verifies, compiles and activates a fetched bundle at `now` (unix seconds). Either the
    /// whole bundle becomes active (policy, data, agent inventory, revision) or nothing
    /// changes and the last good policy stays.
    pub fn activate_bundle(&mut self, bytes: &[u8], now: u64) -> Result<String, BundleError> {
        let settings = self
            .bundle
            .as_ref()
            .ok_or_else(|| BundleError::Fetch("no bundle is configured".to_owned()))?;
        let opened = settings.open(bytes, now)?;
        let source = &self.policy_source;
        // A bundle signed before the active one is a rollback (a replayed or stale copy):
        // refused, and the active policy stays.
        if let Some(active) = source.issued_at.filter(|active| opened.issued_at < *active) {
            return Err(BundleError::Older {
                offered: opened.issued_at,
                active,
            });
        }
        let raw = crate::config::RawPolicy {
            entrypoint: source.entrypoint.to_string(),
            modules: opened.modules,
            data: opened.data,
            max_instructions: source.max_instructions,
        };
        let inventory = compile::inventory(&raw.data, source.inventory.as_deref())
            .map_err(|err| BundleError::Policy(err.to_string()))?;
        let policy = Policy::compile(&raw).map_err(|err| BundleError::Policy(err.to_string()))?;
        self.policy = Some(policy);
        self.inventory = inventory;
        self.policy_source.kind = "bundle";
        self.policy_source.revision = opened.revision.as_str().into();
        self.policy_source.activated_at = Some(now);
        self.policy_source.issued_at = Some(opened.issued_at);
        Ok(opened.revision)
    }

    /// The revision of the policy deciding now: the bundle's, or a digest of the inline policy.
    pub fn policy_revision(&self) -> &str {
        &self.policy_source.revision
    }

    /// Unix seconds when the active bundle was activated; `None` before the first.
    pub fn bundle_activated_at(&self) -> Option<u64> {
        self.policy_source.activated_at
    }

    /// Where audit events go; the host implements the outputs.
    pub fn audit_settings(&self) -> &crate::config::RawAudit {
        &self.audit
    }

    pub fn revocation_version(&self) -> Option<u64> {
        self.revocations.version
    }

    /// Unix seconds of the last successful feed update.
    pub fn revocation_updated_at(&self) -> Option<u64> {
        self.revocations.updated_at
    }

    /// Fails closed while a required feed is staler than its bound; a route may say whether
    /// it requires the feed, overriding `fail_closed`.
    fn check_feed(&self, now: u64, route_requires: Option<bool>) -> Result<(), Refusal> {
        let Some(feed) = self
            .feed
            .as_ref()
            .filter(|f| route_requires.unwrap_or(f.fail_closed))
        else {
            return Ok(());
        };
        let since = self
            .revocations
            .updated_at
            .or(self.first_decision_at)
            .unwrap_or(now);
        let age = now.saturating_sub(since);
        if age > feed.max_staleness_seconds {
            let last = match self.revocations.updated_at {
                Some(_) => format!("last update {age}s ago"),
                None => format!("no update in {age}s"),
            };
            return Err(Refusal(
                Outcome::Unavailable,
                format!(
                    "revocation feed is stale ({last}, limit {}s)",
                    feed.max_staleness_seconds
                ),
            ));
        }
        Ok(())
    }

    /// For runtimes that verify signatures natively (Web Crypto): the signature check this
    /// request's workload token needs, with the key and algorithm Bridle chose. `None` when
    /// none is needed or the token is refused anyway: then decide as usual.
    pub fn signature_job(&mut self, request: &RequestView, now: u64) -> Option<SignatureJob> {
        if self.settings.host_payload_header.is_some() {
            return None;
        }
        let token = self.extract_token(request).ok()?;
        if self.cache.get(token, now).is_some() {
            return None;
        }
        let job = self.verifier.signature_job(token, now).ok()?;
        if self.signature_jobs.len() >= MAX_SIGNATURE_JOBS {
            self.signature_jobs.clear();
        }
        self.signature_jobs.insert(token_digest(token));
        Some(job)
    }

    /// Decides with the runtime's verdict on a signature [`Authorizer::signature_job`] asked
    /// for. A verdict for another token, or one never asked for, is ignored: the signature is
    /// then verified here.
    pub fn decide_with_signature(
        &mut self,
        request: &RequestView,
        valid: bool,
        host: &mut dyn Host,
    ) -> Decision {
        self.verdict = self
            .extract_token(request)
            .ok()
            .map(token_digest)
            .filter(|digest| self.signature_jobs.remove(digest))
            .map(|token_digest| SignatureVerdict {
                token_digest,
                valid,
            });
        let decision = self.decide(request, host);
        self.verdict = None;
        decision
    }

    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }

    /// How many body bytes the adapter must buffer before calling [`Authorizer::decide`], or
    /// `None` when the decision needs headers only. A body over the limit is refused with
    /// [`Authorizer::refuse_oversized`].
    pub fn body_limit(&self, request: &RequestView) -> Option<usize> {
        // Only a POST to an MCP route has a body to read: skip the path parse for the rest.
        if request.method != "POST"
            || !self
                .routes
                .iter()
                .any(|r| r.protocol == crate::config::Protocol::Mcp)
        {
            return None;
        }
        let parsed = parse_path(&request.path).ok()?;
        let route = intent::match_route(&self.routes, &request.method, &parsed)
            .and_then(|(i, _)| self.routes.get(i));
        intent::body_limit(route, &request.method, &self.mcp)
    }

    fn next_decision_id(&mut self) -> String {
        self.next_id = self.next_id.wrapping_add(1);
        let mut id = String::with_capacity(self.id_prefix.len() + 16);
        id.push_str(&self.id_prefix);
        for shift in (0..16).rev() {
            let nibble = (self.next_id >> (shift * 4)) & 0xf;
            id.push(char::from_digit(nibble as u32, 16).unwrap_or('0'));
        }
        id
    }

    /// Decides on one request. Never panics and never allows on an error path.
    pub fn decide(&mut self, request: &RequestView, host: &mut dyn Host) -> Decision {
        let started = host.now_unix_nanos();
        self.first_decision_at
            .get_or_insert(started / 1_000_000_000);
        let mut trace = Trace::default();
        let result = self.evaluate(request, started / 1_000_000_000, &mut trace, host);
        self.finish(request, result, trace, started, host)
    }

    /// The refusal for a body larger than [`Authorizer::body_limit`] allowed, audited like any
    /// other decision.
    pub fn refuse_oversized(
        &mut self,
        request: &RequestView,
        limit: usize,
        host: &mut dyn Host,
    ) -> Decision {
        self.refuse(request, HostRefusal::TooLarge { limit }, host)
    }

    /// A refusal the host's adapter must make before a decision can run, with a decision id
    /// and an audit event like every other answer.
    pub fn refuse(
        &mut self,
        request: &RequestView,
        refusal: HostRefusal,
        host: &mut dyn Host,
    ) -> Decision {
        let started = host.now_unix_nanos();
        let refusal = match refusal {
            HostRefusal::TooLarge { limit } => Refusal(
                Outcome::PayloadTooLarge,
                format!("request body is larger than {limit} bytes"),
            ),
            HostRefusal::LengthRequired { host } => Refusal(
                Outcome::LengthRequired,
                format!(
                    "this route's requests are decided on their body, which this host ({host}) \
                     can only hold with a content-length header"
                ),
            ),
            HostRefusal::Unsupported(err) => Refusal(Outcome::Unavailable, err.to_string()),
        };
        let trace = Trace {
            by_host: true,
            ..Trace::default()
        };
        self.finish(request, Err(refusal), trace, started, host)
    }

    fn finish(
        &mut self,
        request: &RequestView,
        result: Result<crate::policy::PolicyDecision, Refusal>,
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
            if self.audit.arguments == crate::config::ArgumentsInAudit::Include {
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
    fn forward_headers(
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
    fn credential_headers(&self) -> Vec<String> {
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

    fn evaluate(
        &mut self,
        request: &RequestView,
        now: u64,
        trace: &mut Trace,
        host: &mut dyn Host,
    ) -> Result<crate::policy::PolicyDecision, Refusal> {
        let parsed = parse_path(&request.path)
            .map_err(|err| Refusal(Outcome::BadRequest, err.to_string()))?;
        let route = intent::match_route(&self.routes, &request.method, &parsed);
        let route_settings = route.as_ref().and_then(|(i, _)| self.routes.get(*i));
        let require_task = route_settings.is_some_and(|r| r.require_task);
        let fresh_revocations = route_settings.and_then(|r| r.fresh_revocations);
        trace.dry_run = route_settings.is_some_and(|r| r.dry_run);
        let route_name = route_settings.map(|r| r.name.clone()).unwrap_or_default();

        let identity = self
            .authenticate(request, now, &mut trace.cache_hit)
            .map_err(Refusal::unauthenticated)?;
        let token = &identity.token;
        let caller: &str = &identity.caller;
        let mut agent = identity.agent.clone();
        agent.owner = self.inventory.owners.get(caller).cloned();
        agent.cache_hit = trace.cache_hit.unwrap_or(false);
        trace.agent = Some(agent);
        // Where the host proves who presents the credential, a delegated credential's actor
        // is that party: a copied credential does not work from another workload.
        if let (Some(actor), Some(peer)) = (&token.actor, &request.connection.peer_uri_san) {
            if actor != peer {
                return Err(Refusal::unauthenticated(
                    crate::delegation::DelegationError::ActorIsNotPeer {
                        actor: quote(actor),
                        peer: quote(peer),
                    },
                ));
            }
        }
        self.check_feed(now, fresh_revocations)?;
        if let Some(jti) = token
            .jti
            .as_deref()
            .filter(|j| self.revocations.jti_revoked(j))
        {
            return Err(Refusal::unauthenticated(format!(
                "token `{}` is revoked",
                quote(jti)
            )));
        }
        if self.revocations.agent_revoked(caller) {
            return Err(Refusal::forbidden(format!("agent `{caller}` is revoked")));
        }

        let task = match self.task.as_mut() {
            None => None,
            Some(settings) => {
                let value = credentials::single_header(request, &settings.header)
                    .map_err(Refusal::unauthenticated)?;
                match value {
                    None if require_task => {
                        return Err(Refusal::unauthenticated(TaskError::Required {
                            route: route_name,
                            header: settings.header.clone(),
                        }))
                    }
                    None => None,
                    Some(value) => {
                        let (task, _) = settings
                            .verify(value.trim(), now)
                            .map_err(Refusal::unauthenticated)?;
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
                        Some(task)
                    }
                }
            }
        };

        // Authority comes from the task credential when there is one, else from the identity.
        let (authority_claims, exercised) = match &task {
            Some(task) => (&task.token.claims, task.scopes.clone()),
            None => (
                &token.claims,
                crate::delegation::scopes(token.claims.get("scope")),
            ),
        };
        // A delegated workload credential names its caller in `act`; its chain holds even when
        // a task credential carries the authority (and a chain of its own).
        let identity_chain = Chain::from_claims(&token.claims, self.max_delegation_depth)
            .map_err(Refusal::forbidden)?;
        let chain = match &task {
            Some(task) => {
                if let Some(chain) = &identity_chain {
                    crate::delegation::check_may_act(&token.claims, chain.current_actor())
                        .map_err(Refusal::forbidden)?;
                }
                Chain::from_claims(&task.token.claims, self.max_delegation_depth)
                    .map_err(Refusal::forbidden)?
                    .or(identity_chain)
            }
            None => identity_chain,
        };
        crate::delegation::check_may_act(
            authority_claims,
            chain.as_ref().map_or(caller, Chain::current_actor),
        )
        .map_err(Refusal::forbidden)?;
        if let Some(chain) = &chain {
            trace.delegation = chain.chain.iter().map(|a| a.sub.clone()).collect();
            if chain.current_actor() != caller {
                return Err(Refusal::forbidden(
                    crate::delegation::DelegationError::ActorIsNotCaller {
                        actor: chain.current_actor().to_owned(),
                        caller: caller.to_owned(),
                    },
                ));
            }
            let inventory = &self.inventory.scopes;
            chain
                .check_attenuation(exercised.as_ref(), &|sub: &str| inventory.get(sub).cloned())
                .map_err(Refusal::forbidden)?;
        }

        let route = route.and_then(|(i, captures)| self.routes.get(i).map(|r| (r, captures)));
        let intent = intent::build(request, route, &self.mcp).map_err(|err| {
            let outcome = match err {
                crate::mcp::McpError::Encoding(_) => Outcome::UnsupportedMediaType,
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
            trace.tools_filter = Some(crate::tools_list::ToolsListFilter {
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

    /// A policy asked for approval: an approval credential for exactly this action turns the
    /// answer into an allow, once.
    fn check_approval(
        &self,
        request: &RequestView,
        mut decision: crate::policy::PolicyDecision,
        approval_request: &ApprovalRequest,
        now: u64,
        trace: &mut Trace,
        host: &mut dyn Host,
    ) -> Result<crate::policy::PolicyDecision, Refusal> {
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
                Ok(crate::policy::PolicyDecision {
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

    fn authenticate(
        &mut self,
        request: &RequestView,
        now: u64,
        cache_hit: &mut Option<bool>,
    ) -> Result<Rc<CachedIdentity>, TokenError> {
        let token = self.extract_token(request)?;
        let by_host = self.settings.host_payload_header.as_deref();
        if let Some(payload_header) = by_host {
            // Checked on every request, cached token or not: the cache knows the token is
            // good, not that the host verified it this time.
            if !request.host_verified {
                return Err(TokenError::NotVerifiedByHost);
            }
            let payload = credentials::single_header(request, payload_header)?
                .ok_or(TokenError::NotVerifiedByHost)?;
            let segment = token.split('.').nth(1).unwrap_or_default();
            if payload.trim().trim_end_matches('=') != segment {
                return Err(TokenError::HostPayloadMismatch);
            }
        }
        if let Some(hit) = self.cache.get(token, now) {
            *cache_hit = Some(true);
            return Ok(hit);
        }
        *cache_hit = Some(false);
        let verdict = self
            .verdict
            .take()
            .filter(|v| v.token_digest == token_digest(token));
        let verified = match (by_host, verdict) {
            (Some(_), _) => self.verifier.verify_signed_by_host(token, now)?,
            (None, Some(verdict)) if verdict.valid => {
                self.verifier.verify_signed_by_host(token, now)?
            }
            (None, Some(_)) => return Err(TokenError::BadSignature),
            (None, None) => self.verifier.verify(token, now)?,
        };
        let skew = self.verifier.skew_seconds();
        let valid_from = verified.not_before.unwrap_or(0).saturating_sub(skew);
        let valid_until = verified.expires_at.saturating_add(skew);
        let subject = verified.actor.as_deref().or(verified.subject.as_deref());
        let caller: Shared = verified
            .spiffe
            .as_ref()
            .map(|s| s.id.as_str())
            .or(subject)
            .unwrap_or_default()
            .into();
        let agent = AgentRef {
            issuer: verified.issuer.as_str().into(),
            subject: subject.map(Shared::from),
            principal: verified
                .actor
                .as_ref()
                .and(verified.subject.as_deref())
                .map(Shared::from),
            spiffe_id: verified.spiffe.as_ref().map(|s| s.id.as_str().into()),
            owner: None,
            token_digest: verified.digest.as_str().into(),
            jti: verified.jti.as_deref().map(Shared::from),
            cache_hit: false,
        };
        let cached = Rc::new(CachedIdentity {
            input: input::identity(&verified),
            token: verified,
            agent,
            caller,
        });
        self.cache
            .insert(token, valid_from, valid_until, Rc::clone(&cached));
        Ok(cached)
    }

    fn extract_token<'r>(&self, request: &'r RequestView) -> Result<&'r str, TokenError> {
        credentials::token(
            request,
            &self.settings.credential_header,
            &self.settings.scheme,
            self.verifier.max_token_bytes(),
        )
    }

    /// Filters a `tools/list` response down to the tools the policy would let this caller
    /// call (with no arguments). A response that cannot be read is replaced by a JSON-RPC
    /// error rather than passed through unfiltered.
    pub fn filter_tools_list(
        &mut self,
        filter: &crate::tools_list::ToolsListFilter,
        body: &[u8],
        content_type: &str,
    ) -> Vec<u8> {
        let mut policy = self.policy.as_mut();
        let mcp = &self.mcp;
        let mut keep = |tool: &str| {
            let annotation = mcp.tools.get(tool).unwrap_or(&mcp.unknown_tool);
            let intent = intent::Intent {
                protocol: crate::config::Protocol::Mcp,
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
        crate::tools_list::filter_body(body, content_type, &mut keep)
            .unwrap_or_else(|err| crate::tools_list::Unfiltered::Unreadable(err).body())
    }

    /// RFC 6750 challenge: no error code when no credential was sent at all.
    fn challenge(&self, reasons: &[String]) -> String {
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
}
