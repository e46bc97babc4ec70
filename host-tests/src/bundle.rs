//! Signed policy bundles for tests, built by `host-tests/bundles/make_bundle.py` (Python's
//! tarfile, gzip and PyJWT), so the plugin's bundle reader meets an archive it did not write.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::{ECDSAP256PublicKeyLike, ES256KeyPair};
use serde_json::{json, Value};

use crate::{paths, Error, IoContext};

/// A bundle signing key (ES256).
pub struct BundleKey {
    pub kid: String,
    key: ES256KeyPair,
}

impl BundleKey {
    pub fn generate(kid: &str) -> Self {
        Self {
            kid: kid.to_owned(),
            key: ES256KeyPair::generate(),
        }
    }

    /// The public JWK, as `bundle.keys.keys[]` lists it.
    pub fn jwk(&self) -> Value {
        let point = self.key.public_key().public_key().to_bytes_uncompressed();
        let x = point.get(1..33).unwrap_or_default();
        let y = point.get(33..).unwrap_or_default();
        json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)})
    }
}

/// What goes into a bundle, and how it may be spoilt for a test.
#[derive(Debug, Clone, Default)]
pub struct BundleSpec {
    pub files: BTreeMap<String, String>,
    pub unsigned: BTreeMap<String, String>,
    pub tamper: BTreeMap<String, String>,
    pub drop: Vec<String>,
    pub scope: Option<String>,
    /// The signature's `iat`; default: when it is built.
    pub issued_at: Option<u64>,
    pub no_signature: bool,
}

impl BundleSpec {
    /// A bundle with one module, one data document and a manifest naming `revision`.
    pub fn new(revision: &str) -> Self {
        Self::default().file(".manifest", &json!({"revision": revision}).to_string())
    }

    /// The shipped agent policy (`policies/agents`) as a bundle, optionally without one agent
    /// of its inventory.
    pub fn agents(revision: &str, without_agent: Option<&str>) -> Result<Self, Error> {
        let dir = paths::policies().join("agents");
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .context(|| format!("reading policies/agents/{name}"))
        };
        let mut data: Value = serde_json::from_str(&read("data.json")?)?;
        if let (Some(agent), Some(agents)) = (
            without_agent,
            data.get_mut("agents").and_then(Value::as_object_mut),
        ) {
            agents.remove(agent);
        }
        Ok(Self::new(revision)
            .file("agents/agents.rego", &read("agents.rego")?)
            .file("data.json", &serde_json::to_string_pretty(&data)?))
    }

    pub fn file(mut self, name: &str, content: &str) -> Self {
        self.files.insert(name.to_owned(), content.to_owned());
        self
    }

    /// Builds the `.tar.gz` with `key`.
    pub fn build(&self, key: &BundleKey) -> Result<Vec<u8>, Error> {
        let pem = key
            .key
            .to_pem()
            .map_err(|err| Error::Token(format!("bundle key: {err}")))?;
        let mut spec = json!({
            "key_pem": pem, "kid": key.kid, "files": self.files, "unsigned": self.unsigned,
            "tamper": self.tamper, "drop": self.drop, "scope": self.scope,
            "no_signature": self.no_signature,
        });
        if let (Some(iat), Some(spec)) = (self.issued_at, spec.as_object_mut()) {
            spec.insert("iat".to_owned(), json!(iat));
        }
        paths::run_venv_script(
            "host-tests/bundles/make_bundle.py",
            &[],
            spec.to_string().as_bytes(),
        )
    }
}
