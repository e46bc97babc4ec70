//! Verification keys from an inline JWKS, and the algorithms Bridle accepts.
//!
//! Only asymmetric algorithms exist here: an HMAC algorithm can never be named in the
//! configuration, so a token signed with HS256 over a public key has nothing to verify against.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::*;

use crate::config::RawJwk;
use crate::error::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Es256,
    Es384,
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    EdDsa,
}

impl Algorithm {
    pub const ALL: [Algorithm; 9] = [
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::Rs256,
        Algorithm::Rs384,
        Algorithm::Rs512,
        Algorithm::Ps256,
        Algorithm::Ps384,
        Algorithm::Ps512,
        Algorithm::EdDsa,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    fn is_rsa(self) -> bool {
        matches!(
            self,
            Algorithm::Rs256
                | Algorithm::Rs384
                | Algorithm::Rs512
                | Algorithm::Ps256
                | Algorithm::Ps384
                | Algorithm::Ps512
        )
    }
}

/// A public key bound to the one algorithm it verifies.
pub enum VerifyingKey {
    Es256(ES256PublicKey),
    Es384(ES384PublicKey),
    Rs256(RS256PublicKey),
    Rs384(RS384PublicKey),
    Rs512(RS512PublicKey),
    Ps256(PS256PublicKey),
    Ps384(PS384PublicKey),
    Ps512(PS512PublicKey),
    EdDsa(Ed25519PublicKey),
}

impl VerifyingKey {
    pub fn algorithm(&self) -> Algorithm {
        match self {
            VerifyingKey::Es256(_) => Algorithm::Es256,
            VerifyingKey::Es384(_) => Algorithm::Es384,
            VerifyingKey::Rs256(_) => Algorithm::Rs256,
            VerifyingKey::Rs384(_) => Algorithm::Rs384,
            VerifyingKey::Rs512(_) => Algorithm::Rs512,
            VerifyingKey::Ps256(_) => Algorithm::Ps256,
            VerifyingKey::Ps384(_) => Algorithm::Ps384,
            VerifyingKey::Ps512(_) => Algorithm::Ps512,
            VerifyingKey::EdDsa(_) => Algorithm::EdDsa,
        }
    }

    /// Verifies signature and registered claims; the claims themselves are read by the caller
    /// from the payload it already decoded, once this returns `Ok`.
    pub fn verify(
        &self,
        token: &str,
        options: VerificationOptions,
    ) -> Result<(), jwt_simple::Error> {
        // ed25519's own length error is not a JWTError and would read as a claims problem;
        // a signature of the wrong length is a signature that does not verify.
        if matches!(self, VerifyingKey::EdDsa(_)) {
            let length = token
                .rsplit('.')
                .next()
                .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
                .map(|s| s.len());
            if length != Some(64) {
                return Err(jwt_simple::JWTError::InvalidSignature.into());
            }
        }
        let options = Some(options);
        match self {
            VerifyingKey::Es256(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
            VerifyingKey::Es384(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
            VerifyingKey::Rs256(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
            VerifyingKey::Rs384(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
            VerifyingKey::Rs512(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
            VerifyingKey::Ps256(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
            VerifyingKey::Ps384(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
            VerifyingKey::Ps512(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
            VerifyingKey::EdDsa(k) => k.verify_token::<NoCustomClaims>(token, options).map(drop),
        }
    }
}

/// All verifiers built from one JWK: one per algorithm the issuer allows and the key supports.
pub struct KeyEntry {
    pub kid: String,
    pub verifiers: Vec<VerifyingKey>,
    /// The public key as a JWK (`kty`, `crv`, `x`, `y`, `n`, `e`), for a runtime that
    /// verifies signatures natively (Web Crypto) with exactly the key Bridle chose.
    pub jwk: serde_json::Value,
}

impl KeyEntry {
    pub fn for_algorithm(&self, alg: Algorithm) -> Option<&VerifyingKey> {
        self.verifiers.iter().find(|k| k.algorithm() == alg)
    }
}

fn b64(field: &str, value: Option<&String>) -> Result<Vec<u8>, ConfigError> {
    let value = value.ok_or_else(|| ConfigError::invalid(field, "missing"))?;
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|err| ConfigError::invalid(field, format!("not base64url without padding: {err}")))
}

/// Builds the verifiers of one JWK for the issuer's allowed algorithms.
/// `at` is the field path of the key, for error messages.
pub fn key_entry(jwk: &RawJwk, allowed: &[Algorithm], at: &str) -> Result<KeyEntry, ConfigError> {
    if jwk.kid.is_empty() {
        return Err(ConfigError::invalid(
            format!("{at}.kid"),
            "must not be empty",
        ));
    }
    if let Some(key_use) = &jwk.key_use {
        if key_use != "sig" {
            return Err(ConfigError::invalid(
                format!("{at}.use"),
                format!("`{key_use}` is not a signature key (expected `sig`)"),
            ));
        }
    }
    let pinned = match &jwk.alg {
        Some(name) => Some(Algorithm::from_name(name).ok_or_else(|| {
            ConfigError::invalid(
                format!("{at}.alg"),
                format!("unsupported algorithm `{name}`"),
            )
        })?),
        None => None,
    };
    let candidates: Vec<Algorithm> = allowed
        .iter()
        .copied()
        .filter(|alg| pinned.is_none_or(|p| p == *alg))
        .collect();
    let field = |name: &str| format!("{at}.{name}");
    let mut verifiers = Vec::new();
    match jwk.kty.as_str() {
        "EC" => {
            let crv = jwk.crv.as_deref().unwrap_or_default();
            let mut point = vec![0x04];
            point.extend(b64(&field("x"), jwk.x.as_ref())?);
            point.extend(b64(&field("y"), jwk.y.as_ref())?);
            let bad = |err: jwt_simple::Error| {
                ConfigError::invalid(field("x"), format!("not a valid {crv} point: {err}"))
            };
            for alg in &candidates {
                match (crv, alg) {
                    ("P-256", Algorithm::Es256) => verifiers.push(VerifyingKey::Es256(
                        ES256PublicKey::from_bytes(&point).map_err(bad)?,
                    )),
                    ("P-384", Algorithm::Es384) => verifiers.push(VerifyingKey::Es384(
                        ES384PublicKey::from_bytes(&point).map_err(bad)?,
                    )),
                    ("P-256" | "P-384", _) => {}
                    _ => {
                        return Err(ConfigError::invalid(
                            field("crv"),
                            format!("unsupported EC curve `{crv}` (P-256 or P-384)"),
                        ))
                    }
                }
            }
        }
        "OKP" => {
            let crv = jwk.crv.as_deref().unwrap_or_default();
            if crv != "Ed25519" {
                return Err(ConfigError::invalid(
                    field("crv"),
                    format!("unsupported OKP curve `{crv}` (Ed25519)"),
                ));
            }
            let x = b64(&field("x"), jwk.x.as_ref())?;
            if candidates.contains(&Algorithm::EdDsa) {
                let key = Ed25519PublicKey::from_bytes(&x).map_err(|err| {
                    ConfigError::invalid(field("x"), format!("not an Ed25519 key: {err}"))
                })?;
                verifiers.push(VerifyingKey::EdDsa(key));
            }
        }
        "RSA" => {
            let n = b64(&field("n"), jwk.n.as_ref())?;
            let e = b64(&field("e"), jwk.e.as_ref())?;
            let bad = |err: jwt_simple::Error| {
                ConfigError::invalid(field("n"), format!("not an acceptable RSA key: {err}"))
            };
            for alg in candidates.iter().filter(|alg| alg.is_rsa()) {
                let key = match alg {
                    Algorithm::Rs256 => {
                        VerifyingKey::Rs256(RS256PublicKey::from_components(&n, &e).map_err(bad)?)
                    }
                    Algorithm::Rs384 => {
                        VerifyingKey::Rs384(RS384PublicKey::from_components(&n, &e).map_err(bad)?)
                    }
                    Algorithm::Rs512 => {
                        VerifyingKey::Rs512(RS512PublicKey::from_components(&n, &e).map_err(bad)?)
                    }
                    Algorithm::Ps256 => {
                        VerifyingKey::Ps256(PS256PublicKey::from_components(&n, &e).map_err(bad)?)
                    }
                    Algorithm::Ps384 => {
                        VerifyingKey::Ps384(PS384PublicKey::from_components(&n, &e).map_err(bad)?)
                    }
                    Algorithm::Ps512 => {
                        VerifyingKey::Ps512(PS512PublicKey::from_components(&n, &e).map_err(bad)?)
                    }
                    Algorithm::Es256 | Algorithm::Es384 | Algorithm::EdDsa => continue,
                };
                verifiers.push(key);
            }
        }
        other => {
            return Err(ConfigError::invalid(
                field("kty"),
                format!("unsupported key type `{other}` (EC, OKP or RSA)"),
            ))
        }
    }
    if verifiers.is_empty() {
        return Err(ConfigError::invalid(
            at,
            "key can verify none of the issuer's allowed algorithms",
        ));
    }
    let mut public = serde_json::Map::new();
    public.insert("kty".into(), jwk.kty.clone().into());
    for (name, value) in [
        ("crv", &jwk.crv),
        ("x", &jwk.x),
        ("y", &jwk.y),
        ("n", &jwk.n),
        ("e", &jwk.e),
    ] {
        if let Some(value) = value {
            public.insert(name.into(), value.clone().into());
        }
    }
    Ok(KeyEntry {
        kid: jwk.kid.clone(),
        verifiers,
        jwk: serde_json::Value::Object(public),
    })
}
