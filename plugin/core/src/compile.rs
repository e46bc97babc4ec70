//! Validation and compilation of the configuration blocks the core holds between requests.
//! Every error names the field it is about.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::config::{ActionClass, Protocol, RawIssuer, RawMcp, RawRoute, RawTool, TokenProfile};
use crate::error::{check_endpoint, check_range, ConfigError};
use crate::identity::keys::{self, Algorithm, KeyEntry};
use crate::identity::verify::{Issuer, RemoteKeys};
use crate::route::PathPattern;

/// Which kind of credential an issuer list verifies: each accepts its own profiles only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerRole {
    Workload,
    Task,
    Approval,
}

impl IssuerRole {
    fn accepts(self, profile: TokenProfile) -> bool {
        match self {
            IssuerRole::Workload => matches!(
                profile,
                TokenProfile::JwtSvid | TokenProfile::Oidc | TokenProfile::AccessToken
            ),
            IssuerRole::Task => profile == TokenProfile::TxnToken,
            IssuerRole::Approval => profile == TokenProfile::Approval,
        }
    }

    fn expected(self) -> &'static str {
        match self {
            IssuerRole::Workload => "`jwt-svid`, `oidc` or `access-token`",
            IssuerRole::Task => "`txn-token`",
            IssuerRole::Approval => "`approval`",
        }
    }
}

pub fn issuers(raw: &[RawIssuer], at: &str, role: IssuerRole) -> Result<Vec<Issuer>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::invalid(at, "at least one issuer is required"));
    }
    let mut seen = HashSet::new();
    let mut issuers = Vec::with_capacity(raw.len());
    for (index, issuer) in raw.iter().enumerate() {
        let at = format!("{at}[{index}]");
        if issuer.issuer.is_empty() {
            return Err(ConfigError::invalid(
                format!("{at}.issuer"),
                "must not be empty",
            ));
        }
        if !seen.insert(issuer.issuer.as_str()) {
            return Err(ConfigError::invalid(
                format!("{at}.issuer"),
                format!("`{}` is configured twice", issuer.issuer),
            ));
        }
        if !role.accepts(issuer.profile) {
            return Err(ConfigError::invalid(
                format!("{at}.profile"),
                format!("must be {} here", role.expected()),
            ));
        }
        if issuer.audiences.is_empty() || issuer.audiences.iter().any(String::is_empty) {
            return Err(ConfigError::invalid(
                format!("{at}.audiences"),
                "at least one non-empty audience is required",
            ));
        }
        if issuer.algorithms.is_empty() {
            return Err(ConfigError::invalid(
                format!("{at}.algorithms"),
                "at least one algorithm is required",
            ));
        }
        let mut algorithms = Vec::new();
        for (a, name) in issuer.algorithms.iter().enumerate() {
            let alg = Algorithm::from_name(name).ok_or_else(|| {
                ConfigError::invalid(
                    format!("{at}.algorithms[{a}]"),
                    format!("`{name}` is not supported (ES256 ES384 RS256 RS384 RS512 PS256 PS384 PS512 EdDSA; never none or HS*)"),
                )
            })?;
            if issuer.profile == TokenProfile::JwtSvid && alg == Algorithm::EdDsa {
                return Err(ConfigError::invalid(
                    format!("{at}.algorithms[{a}]"),
                    "JWT-SVIDs are signed with RS*, ES* or PS* only",
                ));
            }
            algorithms.push(alg);
        }
        let (keys_out, remote) = issuer_keys(issuer, &algorithms, &at)?;
        let asserts_spiffe = issuer.profile == TokenProfile::JwtSvid || issuer.spiffe_subjects;
        if issuer.spiffe_subjects && role != IssuerRole::Workload {
            return Err(ConfigError::invalid(
                format!("{at}.spiffe_subjects"),
                "only workload issuers assert SPIFFE IDs",
            ));
        }
        let trust_domain = match (&issuer.trust_domain, asserts_spiffe) {
            (Some(domain), true) => Some(trust_domain(domain, &at)?),
            (None, true) => {
                return Err(ConfigError::invalid(
                    format!("{at}.trust_domain"),
                    "is required for an issuer that asserts SPIFFE IDs (`jwt-svid`, or \
                     `spiffe_subjects`): its keys sign for one trust domain only",
                ))
            }
            (Some(_), false) => {
                return Err(ConfigError::invalid(
                    format!("{at}.trust_domain"),
                    "applies only to an issuer that asserts SPIFFE IDs (`jwt-svid`, or \
                     `spiffe_subjects`)",
                ))
            }
            (None, false) => None,
        };
        if let Some(seconds) = issuer.max_lifetime_seconds {
            if seconds == 0 || seconds > MAX_TOKEN_LIFETIME_SECONDS {
                return Err(ConfigError::invalid(
                    format!("{at}.max_lifetime_seconds"),
                    format!("must be between 1 and {MAX_TOKEN_LIFETIME_SECONDS} (24 hours)"),
                ));
            }
        }
        issuers.push(Issuer {
            issuer: issuer.issuer.clone(),
            profile: issuer.profile,
            audiences: issuer.audiences.iter().cloned().collect(),
            algorithms,
            keys: keys_out,
            remote,
            spiffe_subjects: issuer.spiffe_subjects,
            trust_domain,
            max_lifetime_seconds: issuer.max_lifetime_seconds,
        });
    }
    Ok(issuers)
}

/// An issuer's inline keys, or (none yet) where its keys are fetched from.
fn issuer_keys(
    issuer: &RawIssuer,
    algorithms: &[Algorithm],
    at: &str,
) -> Result<(Vec<KeyEntry>, Option<RemoteKeys>), ConfigError> {
    match (&issuer.jwks, &issuer.jwks_source) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            format!("{at}.jwks_source"),
            "an issuer's keys are either inline (`jwks`) or fetched (`jwks_source`), not both",
        )),
        (None, None) => Err(ConfigError::invalid(
            format!("{at}.jwks"),
            "keys are required: inline (`jwks`) or fetched (`jwks_source`)",
        )),
        (None, Some(source)) => {
            let at = format!("{at}.jwks_source");
            check_endpoint(&at, &source.cluster, &source.path)?;
            check_range(
                format!("{at}.refresh_seconds"),
                source.refresh_seconds,
                1,
                86_400,
            )?;
            check_range(
                format!("{at}.min_refresh_seconds"),
                source.min_refresh_seconds,
                1,
                source.refresh_seconds,
            )?;
            check_range(
                format!("{at}.max_staleness_seconds"),
                source.max_staleness_seconds,
                source.refresh_seconds,
                7 * 86_400,
            )?;
            check_range(format!("{at}.timeout_ms"), source.timeout_ms, 1, 60_000)?;
            check_range(
                format!("{at}.max_bytes"),
                source.max_bytes as u64,
                1024,
                1024 * 1024,
            )?;
            Ok((Vec::new(), Some(RemoteKeys::new(source.clone()))))
        }
        (Some(jwks), None) => {
            if jwks.keys.is_empty() {
                return Err(ConfigError::invalid(
                    format!("{at}.jwks.keys"),
                    "at least one key is required",
                ));
            }
            let mut kids = HashSet::new();
            let mut keys = Vec::with_capacity(jwks.keys.len());
            for (k, jwk) in jwks.keys.iter().enumerate() {
                let key_at = format!("{at}.jwks.keys[{k}]");
                if !kids.insert(jwk.kid.as_str()) {
                    return Err(ConfigError::invalid(
                        format!("{key_at}.kid"),
                        format!("`{}` is used twice", jwk.kid),
                    ));
                }
                keys.push(keys::key_entry(jwk, algorithms, &key_at)?);
            }
            Ok((keys, None))
        }
    }
}

/// The longest lifetime an issuer's `max_lifetime_seconds` may allow.
pub const MAX_TOKEN_LIFETIME_SECONDS: u64 = 24 * 3600;

/// A trust domain as it appears in a SPIFFE ID: `example.org` in `spiffe://example.org/x`.
fn trust_domain(domain: &str, at: &str) -> Result<String, ConfigError> {
    match crate::identity::SpiffeId::parse(&format!("spiffe://{domain}")) {
        Ok(id) if id.trust_domain == domain => Ok(id.trust_domain),
        _ => Err(ConfigError::invalid(
            format!("{at}.trust_domain"),
            format!(
                "`{domain}` is not a SPIFFE trust domain name (lower-case letters, digits, \
                 `.`, `-`, `_`; no scheme or path)"
            ),
        )),
    }
}

/// A validated route.
pub struct Route {
    pub name: String,
    pub pattern: PathPattern,
    /// Upper-case; empty means any method.
    pub methods: Vec<String>,
    pub protocol: Protocol,
    pub require_task: bool,
    pub action: Option<ActionClass>,
    pub resource: Option<String>,
    pub dry_run: bool,
    pub fresh_revocations: Option<bool>,
    /// An approval binds the exact body: requests are decided on their body.
    pub bind_body: bool,
}

impl Route {
    /// Whether a request with `method` on this route is decided on its body.
    pub fn reads_body(&self, method: &str) -> bool {
        match self.protocol {
            Protocol::Mcp => method == "POST",
            Protocol::Http => self.bind_body && !matches!(method, "GET" | "HEAD"),
        }
    }
}

pub fn routes(raw: &[RawRoute]) -> Result<Vec<Route>, ConfigError> {
    let mut names = HashSet::new();
    raw.iter()
        .enumerate()
        .map(|(index, route)| {
            let at = format!("routes[{index}]");
            if route.name.is_empty() || !names.insert(route.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("{at}.name"),
                    "must be non-empty and unique",
                ));
            }
            let pattern = PathPattern::parse(&route.path).map_err(|err| {
                ConfigError::invalid(format!("{at}.path"), format!("`{}` {err}", route.path))
            })?;
            let mut methods = Vec::with_capacity(route.methods.len());
            for (m, method) in route.methods.iter().enumerate() {
                if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(ConfigError::invalid(
                        format!("{at}.methods[{m}]"),
                        format!("`{method}` is not an HTTP method"),
                    ));
                }
                methods.push(method.to_ascii_uppercase());
            }
            Ok(Route {
                name: route.name.clone(),
                pattern,
                methods,
                protocol: route.protocol,
                require_task: route.require_task,
                action: route.action,
                resource: route.resource.clone(),
                dry_run: route.dry_run,
                fresh_revocations: route.fresh_revocations,
                bind_body: route.approval.bind_body,
            })
        })
        .collect()
}

/// Validated MCP settings.
pub struct Mcp {
    pub max_body_bytes: usize,
    pub tools: BTreeMap<String, RawTool>,
    pub unknown_tool: RawTool,
    pub filter_tools_list: bool,
}

pub const MAX_BODY_BYTES_LIMIT: usize = 16 * 1024 * 1024;

pub fn mcp(raw: RawMcp) -> Result<Mcp, ConfigError> {
    if raw.max_body_bytes == 0 || raw.max_body_bytes > MAX_BODY_BYTES_LIMIT {
        return Err(ConfigError::invalid(
            "mcp.max_body_bytes",
            format!("must be between 1 and {MAX_BODY_BYTES_LIMIT}"),
        ));
    }
    for (name, tool) in &raw.tools {
        if name.is_empty() || tool.data_class.is_empty() {
            return Err(ConfigError::invalid(
                format!("mcp.tools.{name}"),
                "tool names and data classes must not be empty",
            ));
        }
    }
    Ok(Mcp {
        max_body_bytes: raw.max_body_bytes,
        tools: raw.tools,
        unknown_tool: raw.unknown_tool,
        filter_tools_list: raw.filter_tools_list,
    })
}

/// What the agent inventory says about each agent: the scopes it may hold
/// (`data[inventory][agent].scopes`) and its accountable owner (`.owner`).
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub scopes: BTreeMap<String, BTreeSet<String>>,
    pub owners: BTreeMap<String, crate::audit::Shared>,
}

pub fn inventory(
    data: &serde_json::Map<String, serde_json::Value>,
    inventory: Option<&str>,
) -> Result<Inventory, ConfigError> {
    let Some(key) = inventory else {
        return Ok(Inventory::default());
    };
    let Some(serde_json::Value::Object(agents)) = data.get(key) else {
        return Err(ConfigError::invalid(
            "delegation.inventory",
            format!("`policy.data.{key}` is not an object of agents"),
        ));
    };
    let mut found = Inventory::default();
    for (agent, entry) in agents {
        if let Some(granted) = crate::delegation::scopes(entry.get("scopes")) {
            found.scopes.insert(agent.clone(), granted);
        }
        if let Some(owner) = entry.get("owner").and_then(serde_json::Value::as_str) {
            found.owners.insert(agent.clone(), owner.into());
        }
    }
    Ok(found)
}
