//! Workload-token verification: structure, issuer, algorithm, `typ`, key, signature, claims.
//!
//! The payload is decoded once before the signature check, only to route the token to its
//! issuer's keys; nothing from it is trusted or returned until jwt-simple has verified the
//! signature over those same bytes.

use std::cell::Cell;
use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::{Duration, UnixTimeStamp, VerificationOptions};
use jwt_simple::JWTError;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::key_set::{self, KeySetChange, KeySetError};
use super::keys::{Algorithm, KeyEntry};
use super::spiffe::SpiffeId;
use crate::config::{RawKeySource, TokenProfile};

/// A trusted issuer, validated and with its keys parsed.
pub struct Issuer {
    pub issuer: String,
    pub profile: TokenProfile,
    pub audiences: HashSet<String>,
    pub algorithms: Vec<Algorithm>,
    pub keys: Vec<KeyEntry>,
    /// Where the keys are fetched from, when they are not inline.
    pub remote: Option<RemoteKeys>,
    /// A non-JWT-SVID issuer allowed to assert SPIFFE IDs in `sub`.
    pub spiffe_subjects: bool,
    /// The trust domain every SPIFFE ID this issuer asserts must belong to.
    pub trust_domain: Option<String>,
    pub max_lifetime_seconds: Option<u64>,
}

/// An issuer's fetched keys: where from, and when they were last confirmed.
pub struct RemoteKeys {
    pub source: RawKeySource,
    /// The last successful fetch (or not-modified answer); `None` before the first.
    pub fetched_at: Option<u64>,
    /// A token named a key id the set lacks since the last fetch.
    refresh_wanted: Cell<bool>,
    /// The digest of the document the keys came from: the same document again changes nothing.
    document: Option<[u8; 32]>,
}

impl RemoteKeys {
    pub fn new(source: RawKeySource) -> Self {
        Self {
            source,
            fetched_at: None,
            refresh_wanted: Cell::new(false),
            document: None,
        }
    }

    /// Refuses while the keys are missing or older than the source allows.
    fn check_fresh(&self, issuer: &str, now: u64) -> Result<(), TokenError> {
        let limit = self.source.max_staleness_seconds;
        let why = match self.fetched_at {
            None => "its key set has not been fetched yet".to_owned(),
            Some(at) if now.saturating_sub(at) > limit => format!(
                "its key set is stale (last fetched {}s ago, limit {limit}s)",
                now.saturating_sub(at)
            ),
            Some(_) => return Ok(()),
        };
        Err(TokenError::KeysUnavailable {
            issuer: quote(issuer),
            why,
        })
    }
}

/// Why a credential was refused. Each message names the check that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no credential in header `{0}`")]
    Missing(String),
    #[error("header `{0}` does not carry a `{1}` credential")]
    WrongScheme(String, String),
    #[error("token is larger than {0} bytes")]
    TooLarge(usize),
    #[error("token malformed: {0}")]
    Malformed(&'static str),
    #[error("token header parameter `{0}` is not accepted (keys are never taken from a token)")]
    ForbiddenHeader(&'static str),
    #[error("token header lists critical extensions, none of which are supported")]
    CriticalExtension,
    #[error("token issuer `{0}` is not trusted")]
    UntrustedIssuer(String),
    #[error("token algorithm `{alg}` is not allowed for issuer `{issuer}`")]
    AlgorithmNotAllowed { alg: String, issuer: String },
    #[error("token type `{typ}` does not fit the `{profile}` profile")]
    WrongType { typ: String, profile: &'static str },
    #[error("token key id `{0}` is not among the issuer's keys")]
    UnknownKey(String),
    /// The issuer's keys are fetched and not usable now: the gateway's failure, not the
    /// caller's (503).
    #[error("keys of issuer `{issuer}` are unavailable: {why}")]
    KeysUnavailable { issuer: String, why: String },
    #[error("token has no key id and the issuer has several keys")]
    MissingKeyId,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token was not verified by the host (its proof of verification is missing)")]
    NotVerifiedByHost,
    #[error("the payload the host verified is not the payload of this token")]
    HostPayloadMismatch,
    #[error("token has no `exp` claim")]
    MissingExpiry,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet (`nbf`)")]
    NotYetValid,
    #[error("token was issued in the future (`iat`)")]
    IssuedInFuture,
    #[error("token has no `aud` claim")]
    MissingAudience,
    #[error("token audience is not accepted")]
    WrongAudience,
    #[error("token {role} is not a SPIFFE ID: {detail}")]
    NotSpiffe { role: &'static str, detail: String },
    #[error("SPIFFE ID `{id}` is outside trust domain `{trust_domain}` of issuer `{issuer}`")]
    ForeignTrustDomain {
        id: String,
        trust_domain: String,
        issuer: String,
    },
    #[error("token claims malformed: {0}")]
    BadClaims(String),
    #[error("token has no `{0}` claim")]
    MissingClaim(&'static str),
    #[error("token lives {lifetime}s (`exp` - `iat`), over the {max}s maximum: standing access is refused")]
    StandingAccess { lifetime: u64, max: u64 },
}

/// The verified facts about a token.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub issuer: String,
    pub profile: TokenProfile,
    pub subject: Option<String>,
    /// The current actor (`act.sub`) of a delegated credential (RFC 8693): the caller, acting
    /// for `subject`.
    pub actor: Option<String>,
    /// The caller's SPIFFE ID, where the issuer asserts SPIFFE IDs.
    pub spiffe: Option<SpiffeId>,
    pub expires_at: u64,
    pub not_before: Option<u64>,
    pub jti: Option<String>,
    /// First 16 hex characters of the token's SHA-256: how logs refer to a token.
    pub digest: String,
    pub claims: Map<String, Value>,
}

/// A JWS protected header: what Bridle reads, and the parameters it refuses.
#[derive(Deserialize)]
pub(crate) struct Header {
    pub(crate) alg: String,
    #[serde(default)]
    pub(crate) kid: Option<String>,
    #[serde(default)]
    pub(crate) typ: Option<String>,
    #[serde(default, deserialize_with = "present")]
    crit: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    jku: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    x5u: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    jwk: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    x5c: Option<Value>,
}

/// A parameter that is present counts, whatever its value: `"jku": null` or `"crit": null`
/// is still an attempt to use it, and `Option<Value>` alone would read it as absent.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl Header {
    /// A protected header from its JSON: an object (RFC 7515 §4) without duplicate parameters
    /// or nesting past serde_json's depth limit. serde's derive alone would also read a JSON
    /// array as the fields in order (`["ES256", "k1"]` as `alg` and `kid`).
    pub(crate) fn parse(json: &[u8]) -> Result<Self, &'static str> {
        match crate::json_strict::parse(json) {
            Ok(header @ Value::Object(_)) => serde_json::from_value(header)
                .map_err(|_| "header is not a JSON object with a string `alg`"),
            Ok(_) => Err("header is not a JSON object"),
            Err(_) => Err("header is not JSON without duplicate parameters"),
        }
    }

    /// A parameter naming where to get a key (`jku`, `x5u`) or carrying one (`jwk`, `x5c`):
    /// keys are never taken from a token.
    pub(crate) fn key_source(&self) -> Option<&'static str> {
        [
            ("jku", self.jku.is_some()),
            ("x5u", self.x5u.is_some()),
            ("jwk", self.jwk.is_some()),
            ("x5c", self.x5c.is_some()),
        ]
        .into_iter()
        .find_map(|(name, present)| present.then_some(name))
    }

    pub(crate) fn has_crit(&self) -> bool {
        self.crit.is_some()
    }
}

const MAX_HEADER_BYTES: usize = 1024;
const MAX_REASON_INPUT: usize = 96;

pub fn token_digest(token: &str) -> String {
    let hash = hmac_sha256::Hash::hash(token.as_bytes());
    crate::hex::lower(hash.get(..8).unwrap_or_default())
}

/// Caller-supplied text quoted in a reason is cut short and stripped of control characters.
/// For display only: comparisons and keys use the raw value.
pub fn quote(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_REASON_INPUT)
        .collect()
}

fn decode_segment(segment: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Malformed("a segment is not base64url without padding"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signature {
    Verify,
    VerifiedByHost,
}

pub struct TokenVerifier {
    issuers: Vec<Issuer>,
    /// Some issuer's keys are fetched (only then can keys go stale).
    fetches_keys: bool,
    skew_seconds: u64,
    max_token_bytes: usize,
    max_lifetime_seconds: Option<u64>,
}

impl TokenVerifier {
    pub fn new(issuers: Vec<Issuer>, skew_seconds: u64, max_token_bytes: usize) -> Self {
        Self {
            fetches_keys: issuers.iter().any(|i| i.remote.is_some()),
            issuers,
            skew_seconds,
            max_token_bytes,
            max_lifetime_seconds: None,
        }
    }

    /// Refuses tokens whose `exp - iat` exceeds `seconds` (and tokens without `iat`).
    pub fn with_max_lifetime(mut self, seconds: u64) -> Self {
        self.max_lifetime_seconds = Some(seconds);
        self
    }

    /// The issuers whose keys are fetched: index, name and source.
    pub fn remote_sources(&self) -> impl Iterator<Item = (usize, &str, &RawKeySource)> {
        self.issuers
            .iter()
            .enumerate()
            .filter_map(|(index, issuer)| {
                let remote = issuer.remote.as_ref()?;
                Some((index, issuer.issuer.as_str(), &remote.source))
            })
    }

    /// Replaces the keys of the issuer at `index` with the usable keys of a fetched set;
    /// `None` when the document is the one the keys already came from.
    pub fn replace_keys(
        &mut self,
        index: usize,
        body: &[u8],
        now: u64,
    ) -> Result<Option<KeySetChange>, KeySetError> {
        let Some(issuer) = self.issuers.get_mut(index) else {
            return Err(KeySetError::Malformed("no such issuer".to_owned()));
        };
        let Some(remote) = &mut issuer.remote else {
            return Err(KeySetError::Malformed(
                "the issuer's keys are inline".to_owned(),
            ));
        };
        let digest = hmac_sha256::Hash::hash(body);
        if remote.document == Some(digest) {
            remote.fetched_at = Some(now);
            remote.refresh_wanted.set(false);
            return Ok(None);
        }
        let set = key_set::parse(body, &issuer.algorithms)?;
        remote.fetched_at = Some(now);
        remote.refresh_wanted.set(false);
        remote.document = Some(digest);
        issuer.keys = set.keys;
        Ok(Some(KeySetChange {
            kids: key_set::kids(&issuer.keys),
            ignored: set.ignored,
        }))
    }

    /// The source confirmed the keys of the issuer at `index` are current (not modified).
    pub fn confirm_keys(&mut self, index: usize, now: u64) {
        if let Some(remote) = self.issuers.get_mut(index).and_then(|i| i.remote.as_mut()) {
            remote.fetched_at = Some(now);
            remote.refresh_wanted.set(false);
        }
    }

    /// For a token verified earlier (cached): refuses while its issuer's fetched keys are
    /// missing or stale, as [`TokenVerifier::verify`] would now.
    pub fn check_keys_fresh(&self, issuer: &str, now: u64) -> Result<(), TokenError> {
        if !self.fetches_keys {
            return Ok(());
        }
        match self.issuers.iter().find(|i| i.issuer == issuer) {
            Some(Issuer {
                remote: Some(remote),
                ..
            }) => remote.check_fresh(issuer, now),
            _ => Ok(()),
        }
    }

    /// Whether a token named a key id the issuer at `index` lacks since its last fetch.
    pub fn refresh_wanted(&self, index: usize) -> bool {
        self.issuers
            .get(index)
            .and_then(|i| i.remote.as_ref())
            .is_some_and(|r| r.refresh_wanted.get())
    }

    pub fn skew_seconds(&self) -> u64 {
        self.skew_seconds
    }

    pub fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }

    /// Verifies `token` at `now` (unix seconds).
    pub fn verify(&self, token: &str, now: u64) -> Result<VerifiedToken, TokenError> {
        self.check(token, now, Signature::Verify)
    }

    /// Every check of [`TokenVerifier::verify`] except the signature, which the host has
    /// verified (the caller proved that for this very token). Duplicate claims are refused
    /// outright, so Bridle and the host cannot read two different payloads.
    pub fn verify_signed_by_host(
        &self,
        token: &str,
        now: u64,
    ) -> Result<VerifiedToken, TokenError> {
        self.check(token, now, Signature::VerifiedByHost)
    }

    fn check(
        &self,
        token: &str,
        now: u64,
        signature: Signature,
    ) -> Result<VerifiedToken, TokenError> {
        if token.len() > self.max_token_bytes {
            return Err(TokenError::TooLarge(self.max_token_bytes));
        }
        let mut segments = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(TokenError::Malformed("a JWS has exactly three segments"));
        };
        if header_b64.is_empty() || payload_b64.is_empty() || signature_b64.is_empty() {
            return Err(TokenError::Malformed("a segment is empty"));
        }
        if header_b64.len() > MAX_HEADER_BYTES {
            return Err(TokenError::Malformed("header is too large"));
        }
        let header = Header::parse(&decode_segment(header_b64)?).map_err(TokenError::Malformed)?;
        decode_segment(signature_b64)?;
        if let Some(name) = header.key_source() {
            return Err(TokenError::ForbiddenHeader(name));
        }
        if header.crit.is_some() {
            return Err(TokenError::CriticalExtension);
        }
        let payload = decode_segment(payload_b64)?;
        // Duplicate claims are refused on every path: the issuer is chosen from this parse,
        // and a last-wins parser here could route a token to another issuer than the one
        // whose claims the signature check reads.
        let claims = match crate::json_strict::parse(&payload) {
            Ok(Value::Object(claims)) => claims,
            Ok(_) => return Err(TokenError::Malformed("payload is not a JSON object")),
            Err(_) => {
                return Err(TokenError::Malformed(
                    "payload is not JSON without duplicate claims",
                ))
            }
        };
        let issuer_name = match claims.get("iss") {
            Some(Value::String(iss)) => iss.as_str(),
            Some(_) => return Err(TokenError::BadClaims("`iss` is not a string".to_owned())),
            None => return Err(TokenError::BadClaims("`iss` is missing".to_owned())),
        };
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.issuer == issuer_name)
            .ok_or_else(|| TokenError::UntrustedIssuer(quote(issuer_name)))?;
        let alg = Algorithm::from_name(&header.alg)
            .filter(|alg| issuer.algorithms.contains(alg))
            .ok_or_else(|| TokenError::AlgorithmNotAllowed {
                alg: quote(&header.alg),
                issuer: quote(&issuer.issuer),
            })?;
        check_type(header.typ.as_deref(), issuer.profile)?;
        if let Some(remote) = &issuer.remote {
            remote.check_fresh(&issuer.issuer, now)?;
        }
        let key = match &header.kid {
            Some(kid) => issuer.keys.iter().find(|k| &k.kid == kid).ok_or_else(|| {
                // Perhaps a key the issuer has rotated in since the last fetch.
                if let Some(remote) = &issuer.remote {
                    remote.refresh_wanted.set(true);
                }
                TokenError::UnknownKey(quote(kid))
            })?,
            None => match issuer.keys.as_slice() {
                [only] => only,
                _ => return Err(TokenError::MissingKeyId),
            },
        };
        let verifier = key
            .for_algorithm(alg)
            .ok_or_else(|| TokenError::UnknownKey(quote(&key.kid)))?;
        let expires_at = match claims.get("exp") {
            None => return Err(TokenError::MissingExpiry),
            Some(exp) => exp.as_u64().ok_or_else(|| {
                TokenError::BadClaims("`exp` is not a non-negative integer".to_owned())
            })?,
        };
        let options = VerificationOptions {
            accept_future: false,
            required_signature_type: header.typ.clone(),
            allowed_issuers: Some(HashSet::from([issuer.issuer.clone()])),
            allowed_audiences: Some(issuer.audiences.clone()),
            time_tolerance: Some(Duration::from_secs(self.skew_seconds)),
            max_token_length: Some(self.max_token_bytes),
            max_header_length: Some(MAX_HEADER_BYTES),
            artificial_time: Some(UnixTimeStamp::from_secs(now)),
            ..VerificationOptions::default()
        };
        match signature {
            Signature::Verify => verifier.verify(token, options).map_err(map_jwt_error)?,
            Signature::VerifiedByHost => {
                super::claims::check(&claims, &issuer.audiences, self.skew_seconds, now)?
            }
        }
        if issuer.profile == TokenProfile::TxnToken {
            for claim in ["txn", "sub"] {
                if !claims.get(claim).is_some_and(Value::is_string) {
                    return Err(TokenError::MissingClaim(claim));
                }
            }
        }
        let max_lifetime = match (issuer.max_lifetime_seconds, self.max_lifetime_seconds) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(max) = max_lifetime {
            let issued_at = claims
                .get("iat")
                .and_then(Value::as_u64)
                .ok_or(TokenError::MissingClaim("iat"))?;
            let lifetime = expires_at.saturating_sub(issued_at);
            if lifetime > max {
                return Err(TokenError::StandingAccess { lifetime, max });
            }
        }

        let subject = claims.get("sub").and_then(Value::as_str).map(str::to_owned);
        let actor = current_actor(&claims);
        let spiffe = spiffe_of_caller(issuer, subject.as_deref(), actor.as_deref())?;
        Ok(VerifiedToken {
            issuer: issuer.issuer.clone(),
            profile: issuer.profile,
            subject,
            actor,
            spiffe,
            expires_at,
            not_before: claims.get("nbf").and_then(Value::as_u64),
            jti: claims.get("jti").and_then(Value::as_str).map(str::to_owned),
            digest: token_digest(token),
            claims,
        })
    }
}

/// `act.sub` of a delegated credential; `None` when there is no `act` or it is malformed (the
/// delegation chain refuses a malformed one).
fn current_actor(claims: &Map<String, Value>) -> Option<String> {
    claims.get("act")?.get("sub")?.as_str().map(str::to_owned)
}

/// The SPIFFE ID of the caller (the current actor of a delegated credential, else `sub`).
/// A JWT-SVID's `sub` is a SPIFFE ID by definition; every SPIFFE ID an issuer asserts lies in
/// its trust domain.
fn spiffe_of_caller(
    issuer: &Issuer,
    subject: Option<&str>,
    actor: Option<&str>,
) -> Result<Option<SpiffeId>, TokenError> {
    let in_domain = |id: SpiffeId| match &issuer.trust_domain {
        Some(domain) if *domain != id.trust_domain => Err(TokenError::ForeignTrustDomain {
            id: id.id,
            trust_domain: domain.clone(),
            issuer: quote(&issuer.issuer),
        }),
        _ => Ok(id),
    };
    let subject_id = match (issuer.profile, subject) {
        (TokenProfile::JwtSvid, None) => {
            return Err(TokenError::NotSpiffe {
                role: "subject",
                detail: "`sub` is missing".to_owned(),
            })
        }
        (TokenProfile::JwtSvid, Some(sub)) => Some(in_domain(spiffe_id("subject", sub)?)?),
        _ => None,
    };
    // Another issuer's caller is a SPIFFE ID only where the operator says that issuer may
    // assert them: otherwise any OIDC user named `spiffe://…` would act as an agent.
    if issuer.profile != TokenProfile::JwtSvid && !issuer.spiffe_subjects {
        return Ok(None);
    }
    // A name that claims the `spiffe` scheme but does not parse is refused rather than read as
    // a non-SPIFFE caller, which would skip the trust-domain check; on a JWT-SVID every
    // caller, the actor included, is a SPIFFE ID.
    let asserted = |role, name: &str| -> Result<Option<SpiffeId>, TokenError> {
        let claims_spiffe = name
            .get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("spiffe:"));
        if claims_spiffe || issuer.profile == TokenProfile::JwtSvid {
            return in_domain(spiffe_id(role, name)?).map(Some);
        }
        Ok(None)
    };
    match actor {
        Some(actor) => asserted("actor", actor),
        None if subject_id.is_some() => Ok(subject_id),
        None => subject.map_or(Ok(None), |sub| asserted("subject", sub)),
    }
}

fn spiffe_id(role: &'static str, name: &str) -> Result<SpiffeId, TokenError> {
    SpiffeId::parse(name).map_err(|err| TokenError::NotSpiffe {
        role,
        detail: err.to_string(),
    })
}

impl TokenVerifier {
    /// The signature check of `token` for a runtime that verifies natively, with exactly the
    /// key and algorithm [`TokenVerifier::verify`] would use; `Err` when any other check
    /// fails now (the caller then decides the usual way and gets that refusal).
    pub fn signature_job(
        &self,
        token: &str,
        now: u64,
    ) -> Result<super::native::SignatureJob, TokenError> {
        let verified = self.verify_signed_by_host(token, now)?;
        let malformed = || TokenError::Malformed("a JWS has exactly three segments");
        let (signing_input, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
        let (header_b64, _) = signing_input.split_once('.').ok_or_else(malformed)?;
        let header = Header::parse(&decode_segment(header_b64)?).map_err(TokenError::Malformed)?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.issuer == verified.issuer)
            .ok_or_else(|| TokenError::UntrustedIssuer(quote(&verified.issuer)))?;
        let alg =
            Algorithm::from_name(&header.alg).ok_or_else(|| TokenError::AlgorithmNotAllowed {
                alg: quote(&header.alg),
                issuer: quote(&issuer.issuer),
            })?;
        let key = match &header.kid {
            Some(kid) => issuer.keys.iter().find(|k| &k.kid == kid),
            None => issuer.keys.first().filter(|_| issuer.keys.len() == 1),
        }
        .ok_or(TokenError::MissingKeyId)?;
        Ok(super::native::SignatureJob {
            alg: alg.name(),
            jwk: key.jwk.clone(),
            signing_input: signing_input.to_owned(),
            signature: signature.to_owned(),
        })
    }
}

fn check_type(typ: Option<&str>, profile: TokenProfile) -> Result<(), TokenError> {
    let accepted = matches!(
        (profile, typ.map(str::to_ascii_lowercase).as_deref()),
        (TokenProfile::JwtSvid, None | Some("jwt" | "jose"))
            | (TokenProfile::Oidc, None | Some("jwt"))
            | (
                TokenProfile::AccessToken,
                Some("at+jwt" | "application/at+jwt")
            )
            | (TokenProfile::TxnToken, Some("txntoken+jwt"))
            | (TokenProfile::Approval, None | Some("jwt" | "approval+jwt"))
    );
    if accepted {
        Ok(())
    } else {
        Err(TokenError::WrongType {
            typ: quote(typ.unwrap_or("(none)")),
            profile: profile.as_str(),
        })
    }
}

fn map_jwt_error(err: jwt_simple::Error) -> TokenError {
    match err.downcast_ref::<JWTError>() {
        Some(JWTError::InvalidSignature) => TokenError::BadSignature,
        Some(JWTError::TokenHasExpired) => TokenError::Expired,
        Some(JWTError::TokenNotValidYet) => TokenError::NotYetValid,
        Some(JWTError::ClockDrift) => TokenError::IssuedInFuture,
        Some(JWTError::RequiredAudienceMissing) => TokenError::MissingAudience,
        Some(JWTError::RequiredAudienceMismatch) => TokenError::WrongAudience,
        Some(JWTError::TokenTooLong) => TokenError::Malformed("token is too long"),
        Some(JWTError::HeaderTooLarge) => TokenError::Malformed("header is too large"),
        Some(JWTError::CompactEncodingError | JWTError::NotJWT) => {
            TokenError::Malformed("not a compact JWS")
        }
        Some(other) => TokenError::BadClaims(other.to_string()),
        // serde errors: a registered claim of the wrong type, a duplicate claim.
        None => TokenError::BadClaims(quote(&err.to_string())),
    }
}
