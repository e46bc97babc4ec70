//! `.signatures.json`: one JWS over the list of the bundle's files and their SHA-256 hashes,
//! verified against the configured keys before anything in the bundle is read as policy.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::{Duration, UnixTimeStamp, VerificationOptions};
use serde::Deserialize;
use serde_json::Value;

use super::canonical::canonicalize;
use super::BundleError;
use crate::identity::keys::{Algorithm, KeyEntry};
use crate::identity::verify::Header;

const MAX_SIGNATURE_BYTES: usize = 256 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignaturesFile {
    signatures: Vec<String>,
}

#[derive(Deserialize)]
struct Payload {
    files: Vec<SignedFile>,
    #[serde(default)]
    keyid: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    /// When the bundle was signed: the order in which bundles may replace each other.
    #[serde(default)]
    iat: Option<u64>,
}

struct SignedFile {
    name: String,
    hash: String,
    algorithm: String,
}

impl<'de> Deserialize<'de> for SignedFile {
    /// An object only: the derive would also read `["name", "hash", "SHA-256"]`.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut fields = serde_json::Map::<String, Value>::deserialize(deserializer)?;
        let mut take = |name: &'static str| match fields.remove(name) {
            Some(Value::String(value)) => Ok(value),
            _ => Err(serde::de::Error::custom(format!(
                "a file entry needs a string `{name}`"
            ))),
        };
        Ok(SignedFile {
            name: take("name")?,
            hash: take("hash")?,
            algorithm: take("algorithm")?,
        })
    }
}

fn signature(message: impl Into<String>) -> BundleError {
    BundleError::Signature(message.into())
}

/// What a verified signature covers.
pub struct Signed {
    /// Normalized name → SHA-256.
    pub files: BTreeMap<String, String>,
    /// The signature's `iat` (unix seconds).
    pub issued_at: u64,
}

/// Verifies the signatures document and returns the signed files and when they were signed.
pub fn verify(
    document: &[u8],
    keys: &[KeyEntry],
    scope: Option<&str>,
    now: u64,
) -> Result<Signed, BundleError> {
    let file: SignaturesFile = crate::json_strict::from_object(document)
        .map_err(|err| signature(format!("`.signatures.json`: {err}")))?;
    let [token] = file.signatures.as_slice() else {
        return Err(signature(
            "`.signatures.json` must hold exactly one signature",
        ));
    };
    if token.len() > MAX_SIGNATURE_BYTES {
        return Err(signature("the signature is too large"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(signature("the signature is not a compact JWS"));
    };
    let decode = |segment: &str| {
        URL_SAFE_NO_PAD
            .decode(segment)
            .map_err(|_| signature("the signature is not base64url"))
    };
    let header =
        Header::parse(&decode(header)?).map_err(|why| signature(format!("the signature {why}")))?;
    let payload_bytes = decode(payload)?;
    let payload: Payload = crate::json_strict::from_object(&payload_bytes)
        .map_err(|err| signature(format!("the signature payload: {err}")))?;
    if let Some(name) = header.key_source().or(header.has_crit().then_some("crit")) {
        return Err(signature(format!(
            "the signature header carries `{name}`, which is never trusted"
        )));
    }
    let alg = Algorithm::from_name(&header.alg)
        .ok_or_else(|| signature(format!("algorithm `{}` is not accepted", header.alg)))?;
    let kid = header.kid.as_ref().or(payload.keyid.as_ref());
    let key = match kid {
        Some(kid) => keys
            .iter()
            .find(|k| &k.kid == kid)
            .ok_or_else(|| signature(format!("key `{kid}` is not a configured bundle key")))?,
        None => match keys {
            [only] => only,
            _ => {
                return Err(signature(
                    "the signature names no key and several are configured",
                ))
            }
        },
    };
    let verifier = key
        .for_algorithm(alg)
        .ok_or_else(|| signature(format!("key `{}` does not verify {}", key.kid, alg.name())))?;
    let options = VerificationOptions {
        // `iat` orders bundles (an older one never replaces a newer one); nothing expires.
        accept_future: true,
        time_tolerance: Some(Duration::from_secs(0)),
        max_token_length: Some(MAX_SIGNATURE_BYTES),
        artificial_time: Some(UnixTimeStamp::from_secs(now)),
        ..VerificationOptions::default()
    };
    verifier
        .verify(token, options)
        .map_err(|_| signature("the signature does not verify with the configured key"))?;
    if payload.scope.as_deref() != scope {
        return Err(signature(format!(
            "signature scope {:?} does not match the configured scope {:?}",
            payload.scope, scope
        )));
    }
    let issued_at = payload.iat.ok_or_else(|| {
        signature(
            "the signature has no numeric `iat`: bundles are ordered by when they were signed",
        )
    })?;
    let mut files = BTreeMap::new();
    for file in payload.files {
        if file.algorithm != "SHA-256" {
            return Err(signature(format!(
                "file `{}` is hashed with `{}`; only SHA-256 is accepted",
                file.name, file.algorithm
            )));
        }
        let name = super::archive::normalize(&file.name)?;
        if files.insert(name, file.hash.to_ascii_lowercase()).is_some() {
            return Err(signature(format!("file `{}` is listed twice", file.name)));
        }
    }
    Ok(Signed { files, issued_at })
}

/// The SHA-256 OPA records for a file: over the canonical form for JSON, over the bytes
/// otherwise.
pub fn file_hash(name: &str, bytes: &[u8]) -> Result<String, BundleError> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let digest = if base.ends_with(".json") || base == ".manifest" {
        let canonical = canonicalize(bytes).map_err(|err| BundleError::Data {
            file: name.to_owned(),
            message: err.to_string(),
        })?;
        hmac_sha256::Hash::hash(&canonical)
    } else {
        hmac_sha256::Hash::hash(bytes)
    };
    Ok(crate::hex::lower(&digest))
}
