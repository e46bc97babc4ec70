//! Test issuers: key pairs that mint workload tokens, their public JWKs for the plugin's
//! configuration, and the hostile tokens the plugin must refuse.
//!
//! Payloads are built as plain JSON so a test controls every claim, including leaving out the
//! ones a valid token must have.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};

use crate::Error;

/// The JWS algorithms Bridle accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Es256,
    Es384,
    EdDsa,
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
}

impl Alg {
    /// The `alg` header value.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
        }
    }
}

/// RSA test keys: 2048 bits, the smallest size Bridle accepts.
const RSA_BITS: usize = 2048;

enum Key {
    Es256(ES256KeyPair),
    Es384(ES384KeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RS256KeyPair),
    Rs384(RS384KeyPair),
    Rs512(RS512KeyPair),
    Ps256(PS256KeyPair),
    Ps384(PS384KeyPair),
    Ps512(PS512KeyPair),
}

fn token_error(err: impl std::fmt::Display) -> Error {
    Error::Token(err.to_string())
}

impl Key {
    fn generate(alg: Alg, kid: &str) -> Result<Self, Error> {
        Ok(match alg {
            Alg::Es256 => Key::Es256(ES256KeyPair::generate().with_key_id(kid)),
            Alg::Es384 => Key::Es384(ES384KeyPair::generate().with_key_id(kid)),
            Alg::EdDsa => Key::EdDsa(Ed25519KeyPair::generate().with_key_id(kid)),
            Alg::Rs256 => Key::Rs256(
                RS256KeyPair::generate(RSA_BITS)
                    .map_err(token_error)?
                    .with_key_id(kid),
            ),
            Alg::Rs384 => Key::Rs384(
                RS384KeyPair::generate(RSA_BITS)
                    .map_err(token_error)?
                    .with_key_id(kid),
            ),
            Alg::Rs512 => Key::Rs512(
                RS512KeyPair::generate(RSA_BITS)
                    .map_err(token_error)?
                    .with_key_id(kid),
            ),
            Alg::Ps256 => Key::Ps256(
                PS256KeyPair::generate(RSA_BITS)
                    .map_err(token_error)?
                    .with_key_id(kid),
            ),
            Alg::Ps384 => Key::Ps384(
                PS384KeyPair::generate(RSA_BITS)
                    .map_err(token_error)?
                    .with_key_id(kid),
            ),
            Alg::Ps512 => Key::Ps512(
                PS512KeyPair::generate(RSA_BITS)
                    .map_err(token_error)?
                    .with_key_id(kid),
            ),
        })
    }

    fn sign(&self, payload: Map<String, Value>, typ: Option<String>) -> Result<String, Error> {
        // Every claim travels in the custom part so the test decides each one; the standard
        // fields jwt-simple fills in are cleared.
        let mut claims =
            jwt_simple::claims::Claims::with_custom_claims(payload, Duration::from_secs(1));
        claims.issued_at = None;
        claims.expires_at = None;
        claims.invalid_before = None;
        claims.issuer = None;
        claims.subject = None;
        claims.audiences = None;
        claims.jwt_id = None;
        claims.nonce = None;
        let options = HeaderOptions {
            signature_type: typ,
            content_type: None,
        };
        let signed = match self {
            Key::Es256(k) => k.sign_with_options(claims, &options),
            Key::Es384(k) => k.sign_with_options(claims, &options),
            Key::EdDsa(k) => k.sign_with_options(claims, &options),
            Key::Rs256(k) => k.sign_with_options(claims, &options),
            Key::Rs384(k) => k.sign_with_options(claims, &options),
            Key::Rs512(k) => k.sign_with_options(claims, &options),
            Key::Ps256(k) => k.sign_with_options(claims, &options),
            Key::Ps384(k) => k.sign_with_options(claims, &options),
            Key::Ps512(k) => k.sign_with_options(claims, &options),
        };
        signed.map_err(token_error)
    }

    /// The key-type part of the public JWK.
    fn public_jwk(&self) -> Result<Map<String, Value>, Error> {
        let b64 = |bytes: &[u8]| Value::String(URL_SAFE_NO_PAD.encode(bytes));
        let ec = |crv: &str, point: Vec<u8>, size: usize| -> Result<Map<String, Value>, Error> {
            // SEC1 uncompressed: 0x04 || x || y.
            let x = point.get(1..1 + size);
            let y = point.get(1 + size..1 + 2 * size);
            let (Some(x), Some(y)) = (x, y) else {
                return Err(Error::Token(format!("unexpected {crv} point length")));
            };
            let mut jwk = Map::new();
            jwk.insert("kty".into(), "EC".into());
            jwk.insert("crv".into(), crv.into());
            jwk.insert("x".into(), b64(x));
            jwk.insert("y".into(), b64(y));
            Ok(jwk)
        };
        let rsa = |c: jwt_simple::algorithms::RSAPublicKeyComponents| {
            let mut jwk = Map::new();
            jwk.insert("kty".into(), "RSA".into());
            jwk.insert("n".into(), b64(&c.n));
            jwk.insert("e".into(), b64(&c.e));
            jwk
        };
        Ok(match self {
            Key::Es256(k) => ec(
                "P-256",
                k.public_key().public_key().to_bytes_uncompressed(),
                32,
            )?,
            Key::Es384(k) => ec(
                "P-384",
                k.public_key().public_key().to_bytes_uncompressed(),
                48,
            )?,
            Key::EdDsa(k) => {
                let mut jwk = Map::new();
                jwk.insert("kty".into(), "OKP".into());
                jwk.insert("crv".into(), "Ed25519".into());
                jwk.insert("x".into(), b64(&k.public_key().to_bytes()));
                jwk
            }
            Key::Rs256(k) => rsa(k.public_key().to_components()),
            Key::Rs384(k) => rsa(k.public_key().to_components()),
            Key::Rs512(k) => rsa(k.public_key().to_components()),
            Key::Ps256(k) => rsa(k.public_key().to_components()),
            Key::Ps384(k) => rsa(k.public_key().to_components()),
            Key::Ps512(k) => rsa(k.public_key().to_components()),
        })
    }
}

/// A token issuer the plugin is configured to trust (or, for hostile tests, not to).
pub struct TestIssuer {
    /// The exact `iss` of its tokens.
    pub iss: String,
    /// The `kid` of its key.
    pub kid: String,
    pub alg: Alg,
    /// `jwt-svid`, `oidc` or `access-token`.
    pub profile: String,
    /// Audiences the plugin accepts for this issuer; tokens carry the first by default.
    pub audiences: Vec<String>,
    /// The SPIFFE trust domain its entry names where it asserts SPIFFE IDs: that of a
    /// `spiffe://` issuer name, else the demo's.
    pub trust_domain: String,
    key: Key,
}

/// The trust domain of a `spiffe://` issuer name; the demo's for any other.
fn trust_domain_of(iss: &str) -> String {
    iss.strip_prefix("spiffe://")
        .map(|rest| rest.split('/').next().unwrap_or_default())
        .unwrap_or("demo.bridle.dev")
        .to_owned()
}

impl std::fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIssuer")
            .field("iss", &self.iss)
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("profile", &self.profile)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

/// The audience tests and the demo use for the gateway.
pub const GATEWAY_AUDIENCE: &str = "bridle-gateway";

impl TestIssuer {
    /// A SPIFFE JWT-SVID issuer with a fresh key, kid `test-1` and audience `bridle-gateway`.
    pub fn new(iss: &str, alg: Alg) -> Result<Self, Error> {
        let kid = "test-1";
        Ok(Self {
            iss: iss.to_owned(),
            kid: kid.to_owned(),
            alg,
            profile: "jwt-svid".to_owned(),
            audiences: vec![GATEWAY_AUDIENCE.to_owned()],
            trust_domain: trust_domain_of(iss),
            key: Key::generate(alg, kid)?,
        })
    }

    /// The same issuer with another key id (a fresh key).
    pub fn with_kid(self, kid: &str) -> Result<Self, Error> {
        Ok(Self {
            kid: kid.to_owned(),
            key: Key::generate(self.alg, kid)?,
            ..self
        })
    }

    pub fn with_profile(self, profile: &str) -> Self {
        Self {
            profile: profile.to_owned(),
            ..self
        }
    }

    pub fn with_trust_domain(self, trust_domain: &str) -> Self {
        Self {
            trust_domain: trust_domain.to_owned(),
            ..self
        }
    }

    pub fn with_audiences(self, audiences: &[&str]) -> Self {
        Self {
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            ..self
        }
    }

    /// An ES256 issuer from a private EC P-256 JWK (`kty`, `crv`, `kid`, `d`), such as the
    /// demo key in `envoy/demo/`.
    pub fn from_private_jwk(iss: &str, jwk: &Value) -> Result<Self, Error> {
        let field = |name: &str| {
            jwk.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| Error::Token(format!("private jwk has no string `{name}`")))
        };
        if field("kty")? != "EC" || field("crv")? != "P-256" {
            return Err(Error::Token("private jwk is not an EC P-256 key".into()));
        }
        let kid = field("kid")?;
        let d = URL_SAFE_NO_PAD
            .decode(field("d")?)
            .map_err(|err| Error::Token(format!("private jwk `d`: {err}")))?;
        let key = ES256KeyPair::from_bytes(&d)
            .map_err(token_error)?
            .with_key_id(kid);
        let issuer = Self {
            iss: iss.to_owned(),
            kid: kid.to_owned(),
            alg: Alg::Es256,
            profile: "jwt-svid".to_owned(),
            audiences: vec![GATEWAY_AUDIENCE.to_owned()],
            trust_domain: trust_domain_of(iss),
            key: Key::Es256(key),
        };
        // A file whose public half does not match its private half is a broken fixture.
        let public = issuer.jwk()?;
        if public.get("x") != jwk.get("x") || public.get("y") != jwk.get("y") {
            return Err(Error::Token("private jwk: `x`/`y` do not match `d`".into()));
        }
        Ok(issuer)
    }

    /// Same issuer, same `kid`, same algorithm, another key: its tokens look right and must
    /// fail signature verification.
    pub fn impostor(&self) -> Result<Self, Error> {
        Ok(Self {
            iss: self.iss.clone(),
            kid: self.kid.clone(),
            alg: self.alg,
            profile: self.profile.clone(),
            audiences: self.audiences.clone(),
            trust_domain: self.trust_domain.clone(),
            key: Key::generate(self.alg, &self.kid)?,
        })
    }

    /// The public JWK: EC `{kty, crv, x, y}`, OKP `{kty, crv, x}` or RSA `{kty, n, e}`, each
    /// with `kid` and `alg`; base64url without padding.
    pub fn jwk(&self) -> Result<Value, Error> {
        let mut jwk = self.key.public_jwk()?;
        jwk.insert("kid".into(), self.kid.clone().into());
        jwk.insert("alg".into(), self.alg.name().into());
        Ok(Value::Object(jwk))
    }

    /// The payload `claims` describe for this issuer.
    pub fn payload(&self, claims: &Claims) -> Map<String, Value> {
        let now = claims.now.unwrap_or_else(unix_now);
        let at = |offset: i64| json!(now.saturating_add_signed(offset));
        let mut payload = Map::new();
        payload.insert(
            "iss".into(),
            claims
                .iss
                .clone()
                .unwrap_or_else(|| self.iss.clone())
                .into(),
        );
        if let Some(sub) = &claims.sub {
            payload.insert("sub".into(), sub.clone().into());
        }
        let aud = claims
            .aud
            .clone()
            .or_else(|| self.audiences.first().map(|a| Value::String(a.clone())));
        if let Some(aud) = aud {
            payload.insert("aud".into(), aud);
        }
        if let Some(offset) = claims.exp {
            payload.insert("exp".into(), at(offset));
        }
        if let Some(offset) = claims.iat {
            payload.insert("iat".into(), at(offset));
        }
        if let Some(offset) = claims.nbf {
            payload.insert("nbf".into(), at(offset));
        }
        if let Some(jti) = &claims.jti {
            payload.insert("jti".into(), jti.clone().into());
        }
        for (name, value) in &claims.extra {
            payload.insert(name.clone(), value.clone());
        }
        for name in &claims.removed {
            payload.remove(name);
        }
        payload
    }

    /// A signed token with these claims.
    pub fn mint(&self, claims: &Claims) -> Result<String, Error> {
        self.key.sign(self.payload(claims), claims.typ.clone())
    }

    /// A valid token for `sub` with the defaults (five minutes, the first audience).
    pub fn token_for(&self, sub: &str) -> Result<String, Error> {
        self.mint(&Claims::new(sub))
    }
}

/// What a token says, relative to a reference time. Defaults: issued now, expiring in five
/// minutes, audience the issuer's first, `iss` the issuer's, header `typ: JWT`.
#[derive(Debug, Clone)]
pub struct Claims {
    now: Option<u64>,
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Value>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    jti: Option<String>,
    typ: Option<String>,
    extra: Map<String, Value>,
    removed: Vec<String>,
}

impl Claims {
    pub fn new(sub: &str) -> Self {
        Self {
            now: None,
            iss: None,
            sub: Some(sub.to_owned()),
            aud: None,
            exp: Some(300),
            iat: Some(0),
            nbf: None,
            jti: None,
            typ: None,
            extra: Map::new(),
            removed: Vec::new(),
        }
    }

    /// The reference time (Unix seconds) offsets are relative to; default: the wall clock.
    pub fn at(mut self, now: u64) -> Self {
        self.now = Some(now);
        self
    }

    /// Overrides `iss` (an untrusted issuer, say).
    pub fn iss(mut self, iss: &str) -> Self {
        self.iss = Some(iss.to_owned());
        self
    }

    pub fn aud(mut self, aud: &str) -> Self {
        self.aud = Some(aud.into());
        self
    }

    /// `aud` as an array.
    pub fn auds(mut self, auds: &[&str]) -> Self {
        self.aud = Some(json!(auds));
        self
    }

    /// `exp` = now + `offset` seconds (negative: already expired).
    pub fn exp(mut self, offset: i64) -> Self {
        self.exp = Some(offset);
        self
    }

    /// `iat` = now + `offset` seconds.
    pub fn iat(mut self, offset: i64) -> Self {
        self.iat = Some(offset);
        self
    }

    /// `nbf` = now + `offset` seconds.
    pub fn nbf(mut self, offset: i64) -> Self {
        self.nbf = Some(offset);
        self
    }

    pub fn jti(mut self, jti: &str) -> Self {
        self.jti = Some(jti.to_owned());
        self
    }

    /// A unique `jti`.
    pub fn unique_jti(self) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        self.jti(&format!("jti-{}-{n}-{nanos}", std::process::id()))
    }

    /// The header `typ` (default `JWT`).
    pub fn typ(mut self, typ: &str) -> Self {
        self.typ = Some(typ.to_owned());
        self
    }

    /// Any other claim; replaces a standard one of the same name.
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.extra.insert(name.to_owned(), value);
        self
    }

    /// Leaves a claim out entirely (`exp`, `aud`, `sub`, ...).
    pub fn without(mut self, name: &str) -> Self {
        self.removed.push(name.to_owned());
        self
    }
}

/// Seconds since the Unix epoch, from the wall clock.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn b64_json(value: &Value) -> Result<String, Error> {
    Ok(URL_SAFE_NO_PAD.encode(serde_json::to_vec(value)?))
}

fn segments(token: &str) -> Result<(&str, &str, &str), Error> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok((h, p, s)),
        _ => Err(Error::Token("not a three-segment JWS".into())),
    }
}

/// A token from explicit header and payload with the given raw signature bytes.
pub fn raw_token(header: &Value, payload: &Value, signature: &[u8]) -> Result<String, Error> {
    Ok(format!(
        "{}.{}.{}",
        b64_json(header)?,
        b64_json(payload)?,
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// An unsecured JWS (`alg: none`, empty signature) with this payload (RFC 8725: never accept).
pub fn alg_none(payload: &Map<String, Value>) -> Result<String, Error> {
    raw_token(
        &json!({"alg": "none", "typ": "JWT"}),
        &Value::Object(payload.clone()),
        &[],
    )
}

/// The token with its payload edited and its original signature kept.
pub fn tamper(token: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> Result<String, Error> {
    let (header, payload, signature) = segments(token)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|err| Error::Token(format!("payload: {err}")))?;
    let mut claims: Map<String, Value> = serde_json::from_slice(&bytes)?;
    edit(&mut claims);
    Ok(format!(
        "{header}.{}.{signature}",
        b64_json(&Value::Object(claims))?
    ))
}

/// The token with one bit of its signature flipped.
pub fn corrupt_signature(token: &str) -> Result<String, Error> {
    let (header, payload, signature) = segments(token)?;
    let mut bytes = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|err| Error::Token(format!("signature: {err}")))?;
    let Some(middle) = bytes.len().checked_div(2).and_then(|i| bytes.get_mut(i)) else {
        return Err(Error::Token("empty signature".into()));
    };
    *middle ^= 0x01;
    Ok(format!(
        "{header}.{payload}.{}",
        URL_SAFE_NO_PAD.encode(&bytes)
    ))
}

/// Strings that are not JWTs at all.
pub const MALFORMED: &[&str] = &[
    "not-a-jwt",
    "a.b",
    "a.b.c.d",
    "e30.e30.",
    "%%%.%%%.%%%",
    "eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln",
];
