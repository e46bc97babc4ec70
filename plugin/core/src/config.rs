//! The configuration document as operators write it (JSON), before validation.
//!
//! Every struct refuses unknown fields: a misspelt key must fail the load, not be ignored.
//! Semantic checks (keys parse, algorithms known, the policy compiles) live in `compile`.

mod path;

use serde::Deserialize;
use serde_json::{Map, Value};

/// A configuration enum written as one string: its names, `as_str`, and a `Deserialize` that
/// accepts exactly those names. One small impl per enum over one shared visitor, instead of a
/// derived visitor each; the error is raised while the string is read, so it points at it.
macro_rules! named_enum {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub const NAMES: &'static [&'static str] = &[$($name),+];
            const VARIANTS: &'static [$ty] = &[$($ty::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let index = deserializer.deserialize_str(NameOf(Self::NAMES))?;
                Self::VARIANTS
                    .get(index)
                    .copied()
                    .ok_or_else(|| serde::de::Error::custom("no such variant"))
            }
        }
    };
}

/// Reads one of `names` and gives its index.
struct NameOf(&'static [&'static str]);

impl serde::de::Visitor<'_> for NameOf {
    type Value = usize;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "one of {}", self.0.join(", "))
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<usize, E> {
        self.0
            .iter()
            .position(|name| *name == value)
            .ok_or_else(|| E::unknown_variant(value, self.0))
    }
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub identity: RawIdentity,
    pub issuers: Vec<RawIssuer>,
    pub policy: RawPolicy,
    #[serde(default)]
    pub environment: Map<String, Value>,
    #[serde(default)]
    pub response: RawResponse,
    #[serde(default)]
    pub connection: RawConnection,
    #[serde(default)]
    pub task: Option<RawTask>,
    #[serde(default)]
    pub delegation: RawDelegation,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    #[serde(default)]
    pub mcp: RawMcp,
    #[serde(default)]
    pub approval: Option<RawApproval>,
    #[serde(default)]
    pub revocation: RawRevocation,
    #[serde(default)]
    pub audit: RawAudit,
    /// A signed policy bundle the host fetches and refreshes; it replaces `policy.modules`
    /// and `policy.data` once verified.
    #[serde(default)]
    pub bundle: Option<RawBundle>,
    /// Evaluate and audit every request, but never refuse one (rolling out a policy).
    #[serde(default)]
    pub dry_run: bool,
    /// Request headers starting with this prefix are Bridle's: a caller's copies are removed
    /// from every forwarded request, and Bridle sets `<prefix>agent` and `<prefix>agent-owner`.
    #[serde(default = "default_reserved_header_prefix")]
    pub reserved_header_prefix: String,
}

fn default_reserved_header_prefix() -> String {
    "x-bridle-".to_owned()
}

/// Where audit events go and what they may contain.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RawAudit {
    /// One JSON line per decision in the proxy log, behind `bridle.audit `.
    pub log: bool,
    /// The event as host filter state (Envoy: `%FILTER_STATE(wasm.bridle_decision:PLAIN)%`).
    pub filter_state: bool,
    /// Tool arguments in events: `omit` (default), or `include` with `mask` keys masked.
    pub arguments: ArgumentsInAudit,
    /// Argument keys (at any depth) whose values are replaced by `"***"`.
    pub mask: Vec<String>,
    pub collector: Option<RawCollector>,
}

impl Default for RawAudit {
    fn default() -> Self {
        Self {
            log: true,
            filter_state: false,
            arguments: ArgumentsInAudit::Omit,
            mask: Vec::new(),
            collector: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", serde(rename_all = "snake_case"))]
pub enum ArgumentsInAudit {
    Omit,
    Include,
}

named_enum!(ArgumentsInAudit { Omit => "omit", Include => "include" });

/// Batched export of audit events (`POST path` on `cluster`, JSON lines).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawCollector {
    pub cluster: String,
    pub path: String,
    #[serde(default = "default_feed_authority")]
    pub authority: String,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_flush_ms")]
    pub flush_ms: u64,
    #[serde(default = "default_max_buffered")]
    pub max_buffered: usize,
    #[serde(default = "default_feed_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_batch() -> usize {
    100
}

fn default_flush_ms() -> u64 {
    1000
}

fn default_max_buffered() -> usize {
    10_000
}

/// A signed OPA-layout bundle (`.rego` files, `data.json` files, `.manifest`,
/// `.signatures.json`) fetched with `GET path` on `cluster` every `poll_seconds`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawBundle {
    pub cluster: String,
    pub path: String,
    #[serde(default = "default_feed_authority")]
    pub authority: String,
    #[serde(default = "default_bundle_poll_seconds")]
    pub poll_seconds: u64,
    #[serde(default = "default_feed_timeout_ms")]
    pub timeout_ms: u64,
    /// Limit on the archive and on its unpacked size, in bytes.
    #[serde(default = "default_bundle_max_bytes")]
    pub max_bytes: usize,
    /// Keys that may sign bundles (`.signatures.json`).
    pub keys: RawJwks,
    /// When set, the signature's `scope` claim must equal it.
    #[serde(default)]
    pub scope: Option<String>,
}

fn default_bundle_poll_seconds() -> u64 {
    30
}

fn default_bundle_max_bytes() -> usize {
    8 * 1024 * 1024
}

/// Revoked tasks, tokens and agents: inline, and from a feed the host polls.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RawRevocation {
    pub txn: Vec<String>,
    pub jti: Vec<String>,
    pub agents: Vec<String>,
    pub feed: Option<RawFeed>,
}

/// A feed fetched from an upstream cluster of the host (`GET path` on `cluster`).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawFeed {
    pub cluster: String,
    pub path: String,
    #[serde(default = "default_feed_authority")]
    pub authority: String,
    #[serde(default = "default_poll_seconds")]
    pub poll_seconds: u64,
    #[serde(default = "default_feed_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_max_staleness")]
    pub max_staleness_seconds: u64,
    /// Refuse requests (503) while the feed is staler than `max_staleness_seconds`.
    #[serde(default = "default_true")]
    pub fail_closed: bool,
}

/// A remote key set: a cluster of the host and a path on it.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawKeySource {
    pub cluster: String,
    pub path: String,
    #[serde(default = "default_feed_authority")]
    pub authority: String,
    /// How often the set is fetched again (with the last `ETag`).
    #[serde(default = "default_key_refresh_seconds")]
    pub refresh_seconds: u64,
    /// A token naming a key id the set lacks fetches it sooner, at most this often.
    #[serde(default = "default_key_min_refresh_seconds")]
    pub min_refresh_seconds: u64,
    /// Tokens of the issuer are refused (503) while its keys are older than this (no successful
    /// fetch or not-modified answer), and before the first fetch.
    #[serde(default = "default_key_max_staleness")]
    pub max_staleness_seconds: u64,
    #[serde(default = "default_feed_timeout_ms")]
    pub timeout_ms: u64,
    /// A larger document is refused.
    #[serde(default = "default_key_set_bytes")]
    pub max_bytes: usize,
}

fn default_key_refresh_seconds() -> u64 {
    300
}

fn default_key_min_refresh_seconds() -> u64 {
    30
}

fn default_key_max_staleness() -> u64 {
    3600
}

fn default_key_set_bytes() -> usize {
    64 * 1024
}

fn default_feed_authority() -> String {
    "bridle-control".to_owned()
}

fn default_poll_seconds() -> u64 {
    10
}

fn default_feed_timeout_ms() -> u64 {
    2000
}

fn default_max_staleness() -> u64 {
    60
}

fn default_true() -> bool {
    true
}

/// Approval credentials: short-lived JWTs from an approver service, each approving one action.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawApproval {
    #[serde(default = "default_approval_header")]
    pub header: String,
    pub issuers: Vec<RawIssuer>,
    #[serde(default = "default_approval_lifetime")]
    pub max_lifetime_seconds: u64,
}

fn default_approval_header() -> String {
    "bridle-approval".to_owned()
}

fn default_approval_lifetime() -> u64 {
    300
}

/// Per-task credentials: OAuth transaction tokens.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawTask {
    #[serde(default = "default_task_header")]
    pub header: String,
    pub issuers: Vec<RawIssuer>,
    #[serde(default = "default_task_lifetime")]
    pub max_lifetime_seconds: u64,
    #[serde(default)]
    pub binding: TaskBinding,
    #[serde(default)]
    pub forward: bool,
}

fn default_task_header() -> String {
    "txn-token".to_owned()
}

fn default_task_lifetime() -> u64 {
    600
}

/// Which claim of a task credential names the workload it was issued to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", serde(rename_all = "snake_case"))]
pub enum TaskBinding {
    /// `req_wl`, the requesting workload (transaction-token draft).
    #[default]
    ReqWl,
    /// `sub`.
    Sub,
}

named_enum!(TaskBinding { ReqWl => "req_wl", Sub => "sub" });

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RawDelegation {
    pub max_depth: usize,
    /// Key of the agent inventory in `policy.data` (e.g. `agents`); each agent's `scopes`
    /// bound what it can delegate.
    pub inventory: Option<String>,
}

impl Default for RawDelegation {
    fn default() -> Self {
        Self {
            max_depth: 4,
            inventory: None,
        }
    }
}

/// A route: how to read requests whose path and method match.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: String,
    pub path: String,
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub protocol: Protocol,
    #[serde(default)]
    pub require_task: bool,
    #[serde(default)]
    pub action: Option<ActionClass>,
    #[serde(default)]
    pub resource: Option<String>,
    /// Evaluate and audit requests of this route, but never refuse one.
    #[serde(default)]
    pub dry_run: bool,
    /// Refuse (503) while the revocation feed is stale; default `revocation.feed.fail_closed`.
    #[serde(default)]
    pub fresh_revocations: Option<bool>,
    /// What a human approval of this route's requests binds besides agent, task, method,
    /// host, path and query.
    #[serde(default)]
    pub approval: RawRouteApproval,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawRouteApproval {
    /// The exact body bytes (SHA-256): the body of every request of the route is read before
    /// the decision, up to `mcp.max_body_bytes` (413 above).
    #[serde(default)]
    pub bind_body: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", serde(rename_all = "snake_case"))]
pub enum Protocol {
    #[default]
    Http,
    Mcp,
}

named_enum!(Protocol { Http => "http", Mcp => "mcp" });

/// Read, write and execute are separate grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", serde(rename_all = "snake_case"))]
pub enum ActionClass {
    Read,
    Write,
    Execute,
}

named_enum!(ActionClass { Read => "read", Write => "write", Execute => "execute" });

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RawMcp {
    pub max_body_bytes: usize,
    /// Tool annotations: what each tool does and what data it touches.
    pub tools: std::collections::BTreeMap<String, RawTool>,
    /// How tools missing from `tools` are classed: by default as `execute` on `unclassified`
    /// data, the most guarded class.
    pub unknown_tool: RawTool,
    /// Remove tools the agent may not call from `tools/list` responses.
    pub filter_tools_list: bool,
}

impl Default for RawMcp {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            tools: std::collections::BTreeMap::new(),
            unknown_tool: RawTool::default(),
            filter_tools_list: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawTool {
    pub action: ActionClass,
    #[serde(default = "default_data_class")]
    pub data_class: String,
}

fn default_data_class() -> String {
    "unclassified".to_owned()
}

impl Default for RawTool {
    fn default() -> Self {
        Self {
            action: ActionClass::Execute,
            data_class: default_data_class(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RawIdentity {
    pub header: String,
    pub scheme: String,
    pub forward_credential: bool,
    pub clock_skew_seconds: u64,
    pub max_token_bytes: usize,
    pub cache_entries: usize,
    /// The host verifies workload-token signatures (Envoy `jwt_authn` before Bridle).
    pub host_verification: Option<RawHostVerification>,
}

/// How the host proves it verified the workload token of a request. Both must hold for
/// every request: the proof property is present (only the host can set it), and the payload
/// header equals the payload segment of the token in `identity.header` (binding the proof to
/// that token).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawHostVerification {
    /// Envoy: `jwt_authn` `forward_payload_header`.
    pub payload_header: String,
    /// Envoy: `["metadata", "filter_metadata", "envoy.filters.http.jwt_authn"]`, written by
    /// `jwt_authn` with `payload_in_metadata`.
    pub proof_property: Vec<String>,
}

impl Default for RawIdentity {
    fn default() -> Self {
        Self {
            header: "authorization".to_owned(),
            scheme: "Bearer".to_owned(),
            forward_credential: false,
            clock_skew_seconds: 30,
            max_token_bytes: 8192,
            cache_entries: 1024,
            host_verification: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    pub issuer: String,
    pub profile: TokenProfile,
    pub audiences: Vec<String>,
    pub algorithms: Vec<String>,
    /// The issuer's keys, inline. Exactly one of `jwks` and `jwks_source`.
    #[serde(default)]
    pub jwks: Option<RawJwks>,
    /// Where the issuer publishes its keys (a JWKS, or a SPIFFE bundle endpoint's document),
    /// fetched through the host and refreshed: keys rotate without a configuration push.
    #[serde(default)]
    pub jwks_source: Option<RawKeySource>,
    /// Whether a `sub` of this issuer that is a SPIFFE ID is exposed as one
    /// (`input.identity.spiffe`). JWT-SVID issuers always assert SPIFFE IDs; any other issuer
    /// only when set, since a SPIFFE ID is what policies key agents on.
    #[serde(default)]
    pub spiffe_subjects: bool,
    /// The one SPIFFE trust domain whose IDs this issuer may assert (its keys are that trust
    /// domain's bundle). Required for `jwt-svid` issuers and with `spiffe_subjects`; refused
    /// elsewhere.
    #[serde(default)]
    pub trust_domain: Option<String>,
    /// The longest a token of this issuer may live (`exp` - `iat`); `iat` is then required.
    #[serde(default)]
    pub max_lifetime_seconds: Option<u64>,
}

/// How a token of an issuer is shaped and which header `typ` it must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", serde(rename_all = "kebab-case"))]
pub enum TokenProfile {
    /// SPIFFE JWT-SVID: `sub` is a SPIFFE ID; `typ`, when present, is `JWT` or `JOSE`.
    JwtSvid,
    /// OpenID Connect ID token or any plain JWT: `typ`, when present, is `JWT`.
    Oidc,
    /// RFC 9068 access token: `typ` must be `at+jwt`.
    AccessToken,
    /// OAuth transaction token: `typ` must be `txntoken+jwt`; `txn`, `sub`, `iat` required.
    TxnToken,
    /// Bridle approval credential: `typ` absent, `JWT` or `approval+jwt`; `action_digest` and
    /// `jti` required.
    Approval,
}

named_enum!(TokenProfile {
    JwtSvid => "jwt-svid",
    Oidc => "oidc",
    AccessToken => "access-token",
    TxnToken => "txn-token",
    Approval => "approval",
});

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawJwks {
    pub keys: Vec<RawJwk>,
}

/// One JSON Web Key. Fields other than the ones Bridle reads are refused rather than ignored,
/// except the informational ones listed here.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawJwk {
    pub kty: String,
    pub kid: String,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default, rename = "use")]
    pub key_use: Option<String>,
    #[serde(default)]
    pub crv: Option<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub entrypoint: String,
    /// May be empty when a `bundle` is configured: requests are then refused (503) until the
    /// first bundle is verified and active.
    #[serde(default)]
    pub modules: Vec<RawModule>,
    #[serde(default)]
    pub data: Map<String, Value>,
    #[serde(default = "default_max_instructions")]
    pub max_instructions: usize,
}

fn default_max_instructions() -> usize {
    50_000
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawModule {
    pub name: String,
    pub source: String,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RawResponse {
    pub decision_id_header: String,
    pub realm: String,
}

impl Default for RawResponse {
    fn default() -> Self {
        Self {
            decision_id_header: "x-bridle-decision-id".to_owned(),
            realm: "bridle".to_owned(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RawConnection {
    /// Read the mTLS peer's URI SAN from the host and expose it to policy.
    pub peer_uri_san: bool,
}

/// Parses the configuration JSON; errors name the path of the offending field.
pub fn parse(bytes: &[u8]) -> Result<RawConfig, crate::error::ConfigError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let raw = RawConfig::deserialize(&mut de).map_err(|err| crate::error::ConfigError::Parse {
        field: path::of_error(bytes, &err),
        message: err.to_string(),
    })?;
    de.end().map_err(|err| crate::error::ConfigError::Parse {
        field: ".".to_owned(),
        message: err.to_string(),
    })?;
    Ok(raw)
}
