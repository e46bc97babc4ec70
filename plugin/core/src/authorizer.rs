//! The decision pipeline: verify → build input → evaluate → decide → audit.

use std::collections::HashSet;
use std::rc::Rc;

use regorus::Value;

use crate::audit::{self, AgentRef, AuditEvent, PolicyRef, RequestRef};
use crate::config::{self, RawConfig, TokenProfile};
use crate::decision::{Decision, Outcome};
use crate::error::ConfigError;
use crate::host::{AuditSink, Clock};
use crate::identity::cache::TokenCache;
use crate::identity::keys::{self, Algorithm};
use crate::identity::verify::Issuer;
use crate::identity::{TokenError, TokenVerifier, VerifiedToken};
use crate::input;
use crate::policy::{valid_header_name, Policy};
use crate::request::{parse_path, RequestView};

const MAX_CLOCK_SKEW_SECONDS: u64 = 300;
const MAX_TOKEN_BYTES_LIMIT: usize = 64 * 1024;

/// Host-facing settings the adapters need to collect and enforce.
#[derive(Debug, Clone)]
pub struct Settings {
    pub credential_header: String,
    pub scheme: String,
    pub forward_credential: bool,
    pub decision_id_header: String,
    pub realm: String,
    pub peer_uri_san: bool,
}

struct CachedIdentity {
    token: VerifiedToken,
    input: Value,
}

pub struct Authorizer {
    settings: Settings,
    verifier: TokenVerifier,
    cache: TokenCache<CachedIdentity>,
    policy: Policy,
    environment: Value,
    id_prefix: String,
    next_id: u64,
}

impl Authorizer {
    /// Parses, validates and compiles a configuration. `id_seed` makes decision ids unique
    /// across workers; the host supplies it from its randomness or clock.
    pub fn from_json(bytes: &[u8], id_seed: u64) -> Result<Self, ConfigError> {
        Self::from_config(config::parse(bytes)?, id_seed)
    }

    pub fn from_config(raw: RawConfig, id_seed: u64) -> Result<Self, ConfigError> {
        let identity = &raw.identity;
        let header = identity.header.to_ascii_lowercase();
        if !valid_header_name(&header) {
            return Err(ConfigError::invalid(
                "identity.header",
                format!("`{}` is not an HTTP header name", identity.header),
            ));
        }
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
        let decision_id_header = raw.response.decision_id_header.to_ascii_lowercase();
        if !valid_header_name(&decision_id_header) {
            return Err(ConfigError::invalid(
                "response.decision_id_header",
                "is not an HTTP header name",
            ));
        }
        if raw.response.realm.contains(['"', '\\'])
            || raw.response.realm.chars().any(char::is_control)
        {
            return Err(ConfigError::invalid(
                "response.realm",
                "must not contain quotes, backslashes or control characters",
            ));
        }
        let issuers = compile_issuers(&raw)?;
        let policy = Policy::compile(&raw.policy)?;
        let settings = Settings {
            credential_header: header,
            scheme: identity.scheme.clone(),
            forward_credential: identity.forward_credential,
            decision_id_header,
            realm: raw.response.realm.clone(),
            peer_uri_san: raw.connection.peer_uri_san,
        };
        Ok(Self {
            verifier: TokenVerifier::new(
                issuers,
                identity.clock_skew_seconds,
                identity.max_token_bytes,
            ),
            cache: TokenCache::new(identity.cache_entries),
            policy,
            environment: Value::from(serde_json::Value::Object(raw.environment)),
            settings,
            id_prefix: format!("{id_seed:016x}"),
            next_id: 0,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }

    fn next_decision_id(&mut self) -> String {
        self.next_id = self.next_id.wrapping_add(1);
        format!("{}{:016x}", self.id_prefix, self.next_id)
    }

    /// Decides on one request. Never panics and never allows on an error path.
    pub fn decide(
        &mut self,
        request: &RequestView,
        clock: &dyn Clock,
        audit: &mut dyn AuditSink,
    ) -> Decision {
        let started = clock.now_unix_nanos();
        let now = started / 1_000_000_000;
        let decision_id = self.next_decision_id();
        let mut agent: Option<AgentRef> = None;
        let mut cache_hit = None;
        let (outcome, reasons, policy_headers) =
            self.evaluate(request, now, &mut agent, &mut cache_hit);

        let mut decision = Decision {
            outcome,
            decision_id,
            reasons,
            upstream_headers: Vec::new(),
            remove_headers: Vec::new(),
            response_headers: Vec::new(),
            cache_hit,
        };
        decision.response_headers.push((
            self.settings.decision_id_header.clone(),
            decision.decision_id.clone(),
        ));
        match outcome {
            Outcome::Allow => {
                decision.upstream_headers = policy_headers;
                decision.upstream_headers.push((
                    self.settings.decision_id_header.clone(),
                    decision.decision_id.clone(),
                ));
                if !self.settings.forward_credential {
                    decision
                        .remove_headers
                        .push(self.settings.credential_header.clone());
                }
            }
            Outcome::Unauthenticated => {
                decision.response_headers.push((
                    "www-authenticate".to_owned(),
                    self.challenge(&decision.reasons),
                ));
            }
            Outcome::Deny | Outcome::BadRequest | Outcome::Error => {}
        }
        let finished = clock.now_unix_nanos();
        audit.record(&AuditEvent {
            kind: "bridle.decision",
            decision_id: decision.decision_id.clone(),
            time: audit::rfc3339(started),
            outcome,
            status: outcome.status(),
            reasons: decision.reasons.clone(),
            agent,
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
                entrypoint: self.policy.entrypoint().to_owned(),
            },
            latency_us: finished.saturating_sub(started) / 1_000,
        });
        decision
    }

    fn evaluate(
        &mut self,
        request: &RequestView,
        now: u64,
        agent: &mut Option<AgentRef>,
        cache_hit: &mut Option<bool>,
    ) -> (Outcome, Vec<String>, Vec<(String, String)>) {
        let parsed = match parse_path(&request.path) {
            Ok(parsed) => parsed,
            Err(err) => return (Outcome::BadRequest, vec![err.to_string()], Vec::new()),
        };
        let identity = match self.authenticate(request, now, cache_hit) {
            Ok(identity) => identity,
            Err(err) => return (Outcome::Unauthenticated, vec![err.to_string()], Vec::new()),
        };
        *agent = Some(AgentRef {
            issuer: identity.token.issuer.clone(),
            subject: identity.token.subject.clone(),
            spiffe_id: identity.token.spiffe.as_ref().map(|s| s.id.clone()),
            token_digest: identity.token.digest.clone(),
            jti: identity.token.jti.clone(),
            cache_hit: cache_hit.unwrap_or(false),
        });
        let document = input::document(
            identity.input.clone(),
            input::request(request, &parsed, &self.settings.credential_header),
            input::connection(request),
            self.environment.clone(),
        );
        match self.policy.evaluate(document) {
            Ok(d) if d.allow => (Outcome::Allow, d.reasons, d.headers),
            Ok(d) => {
                let reasons = if d.reasons.is_empty() {
                    vec!["denied by policy".to_owned()]
                } else {
                    d.reasons
                };
                (Outcome::Deny, reasons, Vec::new())
            }
            Err(err) => (Outcome::Error, vec![err.to_string()], Vec::new()),
        }
    }

    fn authenticate(
        &mut self,
        request: &RequestView,
        now: u64,
        cache_hit: &mut Option<bool>,
    ) -> Result<Rc<CachedIdentity>, TokenError> {
        let token = self.extract_token(request)?;
        if let Some(hit) = self.cache.get(token, now) {
            *cache_hit = Some(true);
            return Ok(hit);
        }
        *cache_hit = Some(false);
        let verified = self.verifier.verify(token, now)?;
        let skew = self.verifier.skew_seconds();
        let valid_from = verified.not_before.unwrap_or(0).saturating_sub(skew);
        let valid_until = verified.expires_at.saturating_add(skew);
        let cached = Rc::new(CachedIdentity {
            input: input::identity(&verified),
            token: verified,
        });
        self.cache
            .insert(token, valid_from, valid_until, Rc::clone(&cached));
        Ok(cached)
    }

    fn extract_token<'r>(&self, request: &'r RequestView) -> Result<&'r str, TokenError> {
        let header = &self.settings.credential_header;
        let mut values = request.headers.iter().filter(|(name, _)| name == header);
        let (_, value) = values
            .next()
            .ok_or_else(|| TokenError::Missing(header.clone()))?;
        if values.next().is_some() {
            return Err(TokenError::Malformed(
                "the credential header appears more than once",
            ));
        }
        if value.len() > self.verifier.max_token_bytes() + self.settings.scheme.len() + 16 {
            return Err(TokenError::TooLarge(self.verifier.max_token_bytes()));
        }
        let value = std::str::from_utf8(value)
            .map_err(|_| TokenError::Malformed("credential is not ASCII"))?
            .trim();
        let scheme = &self.settings.scheme;
        let token = if scheme.is_empty() {
            value
        } else {
            let (given, rest) = value
                .split_once(' ')
                .ok_or_else(|| TokenError::WrongScheme(header.clone(), scheme.clone()))?;
            if !given.eq_ignore_ascii_case(scheme) {
                return Err(TokenError::WrongScheme(header.clone(), scheme.clone()));
            }
            rest.trim_start()
        };
        if token.is_empty() {
            return Err(TokenError::Missing(header.clone()));
        }
        if !token.is_ascii() {
            return Err(TokenError::Malformed("credential is not ASCII"));
        }
        Ok(token)
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

fn compile_issuers(raw: &RawConfig) -> Result<Vec<Issuer>, ConfigError> {
    if raw.issuers.is_empty() {
        return Err(ConfigError::invalid(
            "issuers",
            "at least one issuer is required",
        ));
    }
    let mut seen = HashSet::new();
    let mut issuers = Vec::with_capacity(raw.issuers.len());
    for (index, issuer) in raw.issuers.iter().enumerate() {
        let at = format!("issuers[{index}]");
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
        if issuer.jwks.keys.is_empty() {
            return Err(ConfigError::invalid(
                format!("{at}.jwks.keys"),
                "at least one key is required",
            ));
        }
        let mut kids = HashSet::new();
        let mut keys_out = Vec::with_capacity(issuer.jwks.keys.len());
        for (k, jwk) in issuer.jwks.keys.iter().enumerate() {
            let key_at = format!("{at}.jwks.keys[{k}]");
            if !kids.insert(jwk.kid.as_str()) {
                return Err(ConfigError::invalid(
                    format!("{key_at}.kid"),
                    format!("`{}` is used twice", jwk.kid),
                ));
            }
            keys_out.push(keys::key_entry(jwk, &algorithms, &key_at)?);
        }
        issuers.push(Issuer {
            issuer: issuer.issuer.clone(),
            profile: issuer.profile,
            audiences: issuer.audiences.iter().cloned().collect(),
            algorithms,
            keys: keys_out,
        });
    }
    Ok(issuers)
}
