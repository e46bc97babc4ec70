//! The authorizer: a compiled configuration, the per-worker state it decides with (token
//! caches, revocations, the active policy, decision ids), and the entry points hosts call.
//! Compiling is in `configure`, the request path in `pipeline` (its credential in
//! `authenticate`), the answer and audit event in `finish`, bundles and feeds in `sources`.

mod authenticate;
mod configure;
mod finish;
mod pipeline;
mod sources;

pub use sources::KeySetId;

use std::collections::BTreeSet;

use regorus::Value;

use crate::approval::{ApprovalRequest, ApprovalSettings};
use crate::audit::{AgentRef, Shared};
use crate::bundle::BundleSettings;
use crate::compile::{self, Mcp, Route};
use crate::config;
use crate::decision::{Decision, Outcome};
use crate::error::ConfigError;
use crate::host::Host;
use crate::identity::cache::TokenCache;
use crate::identity::native::SignatureVerdict;
use crate::identity::{TokenError, TokenVerifier, VerifiedToken};
use crate::intent;
use crate::policy::Policy;
use crate::request::{parse_path, RequestView};
use crate::revocation::RevocationState;
use crate::task::TaskSettings;

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
    /// A credential that did not verify: 401, unless the gateway could not check it (503).
    fn credential(err: TokenError) -> Self {
        match err {
            TokenError::KeysUnavailable { .. } => Refusal(Outcome::Unavailable, err.to_string()),
            _ => Refusal::unauthenticated(err),
        }
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

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }

    /// How many body bytes the adapter must buffer before calling [`Authorizer::decide`], or
    /// `None` when the decision needs headers only. A body over the limit is refused with
    /// [`Authorizer::refuse_oversized`].
    pub fn body_limit(&self, request: &RequestView) -> Option<usize> {
        // Only a route that reads bodies needs one: skip the path parse for the rest.
        if !self.routes.iter().any(|r| r.reads_body(&request.method)) {
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
}
