//! Key sets fetched from an issuer (a JWKS URL, or a SPIFFE bundle endpoint's document, which
//! is a JWKS whose keys say `use: jwt-svid` or `x509-svid`).
//!
//! A provider may publish keys an issuer cannot use (another algorithm family, X.509 SVID
//! keys, encryption keys): RFC 7517 §5 says to ignore those, so each is skipped with the
//! reason, not the whole set. Each usable key is checked as an inline one is (curve, RSA
//! size, algorithms); a key carrying private material is skipped too. A set with no usable
//! key is refused, and the last good keys stay.

use serde_json::Value;

use super::keys::{key_entry, Algorithm, KeyEntry};
use crate::config::RawJwk;

/// Members that only a private or symmetric key has: such a key is never used.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a fetched key set was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    #[error("the key set is not a JSON object with a `keys` array ({0})")]
    Malformed(String),
    #[error("the key set has no key this issuer can use (ignored: {})", .0.join("; "))]
    NoUsableKey(Vec<String>),
}

/// The usable keys of a fetched set, and why each other key was ignored.
pub struct KeySet {
    pub keys: Vec<KeyEntry>,
    pub ignored: Vec<String>,
}

/// What replacing an issuer's keys did: the key ids now in use, and the keys ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySetChange {
    pub kids: String,
    pub ignored: Vec<String>,
}

/// Reads a fetched key set for an issuer that allows `algorithms`.
pub fn parse(body: &[u8], algorithms: &[Algorithm]) -> Result<KeySet, KeySetError> {
    let document =
        crate::json_strict::parse(body).map_err(|err| KeySetError::Malformed(err.to_string()))?;
    let Some(Value::Array(members)) = document.as_object().and_then(|d| d.get("keys")) else {
        return Err(KeySetError::Malformed("no `keys` array".to_owned()));
    };
    let mut keys: Vec<KeyEntry> = Vec::new();
    let mut ignored = Vec::new();
    for (index, member) in members.iter().enumerate() {
        let at = format!("keys[{index}]");
        match usable(member, algorithms, &at) {
            Ok(key) if keys.iter().any(|k| k.kid == key.kid) => {
                ignored.push(format!("{at}: key id `{}` is used twice", key.kid));
            }
            Ok(key) => keys.push(key),
            Err(why) => ignored.push(why),
        }
    }
    if keys.is_empty() {
        return Err(KeySetError::NoUsableKey(ignored));
    }
    Ok(KeySet { keys, ignored })
}

/// One member of the set as a verifying key, or why it is ignored.
fn usable(member: &Value, algorithms: &[Algorithm], at: &str) -> Result<KeyEntry, String> {
    let Value::Object(fields) = member else {
        return Err(format!("{at}: not a JSON object"));
    };
    if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| fields.contains_key(**m)) {
        return Err(format!("{at}: holds private key material (`{member}`)"));
    }
    let text = |name: &str| -> Result<Option<String>, String> {
        match fields.get(name) {
            None => Ok(None),
            Some(Value::String(value)) => Ok(Some(value.clone())),
            Some(_) => Err(format!("{at}.{name}: not a string")),
        }
    };
    // A SPIFFE bundle marks the keys that sign JWT-SVIDs; its X.509 keys are not for tokens.
    let key_use = match text("use")?.as_deref() {
        None => None,
        Some("sig" | "jwt-svid") => Some("sig".to_owned()),
        Some(other) => return Err(format!("{at}.use: `{other}` is not a token signing key")),
    };
    let jwk = RawJwk {
        kty: text("kty")?.unwrap_or_default(),
        kid: text("kid")?.unwrap_or_default(),
        alg: text("alg")?,
        key_use,
        crv: text("crv")?,
        x: text("x")?,
        y: text("y")?,
        n: text("n")?,
        e: text("e")?,
    };
    key_entry(&jwk, algorithms, at).map_err(|err| err.to_string())
}

/// The key ids of `keys`, for logs: which keys a set change brought.
pub fn kids(keys: &[KeyEntry]) -> String {
    let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
    kids.join(", ")
}

#[cfg(test)]
mod tests {
    use jwt_simple::prelude::*;
    use serde_json::json;

    use super::*;

    fn member(pairs: &[(&str, &str)]) -> Value {
        let map: serde_json::Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect();
        Value::Object(map)
    }

    fn es256(kid: &str) -> Value {
        let key = ES256KeyPair::generate();
        let point = key.public_key().public_key().to_bytes_uncompressed();
        let b64 = |bytes: &[u8]| {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        };
        member(&[
            ("kty", "EC"),
            ("crv", "P-256"),
            ("kid", kid),
            ("x", &b64(point.get(1..33).unwrap_or_default())),
            ("y", &b64(point.get(33..65).unwrap_or_default())),
        ])
    }

    #[test]
    fn keys_an_issuer_cannot_use_are_ignored_one_by_one() {
        let mut private = es256("private");
        private["d"] = json!("AAAA");
        let mut x509 = es256("x509");
        x509["use"] = json!("x509-svid");
        let mut svid = es256("svid");
        svid["use"] = json!("jwt-svid");
        svid["x5c"] = json!(["MIIB"]);
        let ed = member(&[
            ("kty", "OKP"),
            ("crv", "Ed25519"),
            ("kid", "ed"),
            ("x", "AAAA"),
        ]);
        let body = json!({"spiffe_refresh_hint": 300, "keys": [
            es256("a"), private, x509, svid, ed, es256("a"), "not a key"
        ]});
        let set = parse(body.to_string().as_bytes(), &[Algorithm::Es256]).unwrap();
        assert_eq!(kids(&set.keys), "a, svid");
        assert_eq!(set.ignored.len(), 5, "{:?}", set.ignored);
        assert!(set.ignored[0].contains("private key material (`d`)"));
        assert!(set.ignored[1].contains("`x509-svid` is not a token signing key"));
        assert!(set.ignored[3].contains("`a` is used twice"));
    }

    #[test]
    fn a_set_without_a_usable_key_or_that_is_not_a_jwks_is_refused() {
        for body in [
            json!({"keys": []}).to_string(),
            json!({"keys": [{"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"}]}).to_string(),
            json!([{"keys": []}]).to_string(),
            r#"{"keys": [], "keys": []}"#.to_owned(),
            "{".to_owned(),
        ] {
            assert!(
                parse(body.as_bytes(), &[Algorithm::Es256]).is_err(),
                "{body}"
            );
        }
    }
}
