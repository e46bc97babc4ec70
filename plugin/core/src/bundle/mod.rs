//! Signed policy bundles in OPA's layout: a gzipped tar of `.rego` modules, `data.json` files
//! (placed in `data` at their directory's path), an optional `.manifest` with the revision,
//! and `.signatures.json`. Nothing is read as policy before the signature and every file's
//! hash check out; a file the signature does not list refuses the bundle.

pub mod archive;
pub mod canonical;
pub mod signature;

use serde_json::{Map, Value};

use crate::config::{RawBundle, RawModule};
use crate::error::{check_endpoint, check_range, ConfigError};
use crate::identity::keys::{key_entry, Algorithm, KeyEntry};

const MAX_BUNDLE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("archive: {0}")]
    Archive(String),
    #[error("bundle is larger than {0} bytes")]
    TooLarge(usize),
    #[error("signature: {0}")]
    Signature(String),
    #[error("file `{0}` is not covered by the signature")]
    Unsigned(String),
    #[error("file `{0}` is signed but missing from the bundle")]
    Missing(String),
    #[error("file `{0}` does not match its signed hash")]
    HashMismatch(String),
    #[error("file `{0}` is not a bundle file Bridle reads (.rego, data.json, .manifest)")]
    Unsupported(String),
    #[error("file `{file}`: {message}")]
    Data { file: String, message: String },
    #[error("policy does not compile: {0}")]
    Policy(String),
    #[error("bundle fetch failed: {0}")]
    Fetch(String),
    #[error("bundle signed at {offered} is older than the active one (signed at {active}); the newer is kept")]
    Older { offered: u64, active: u64 },
}

/// What verifies a bundle, compiled from the `bundle` block.
pub struct BundleSettings {
    pub source: RawBundle,
    keys: Vec<KeyEntry>,
}

impl BundleSettings {
    pub fn compile(raw: &RawBundle) -> Result<Self, ConfigError> {
        check_endpoint("bundle", &raw.cluster, &raw.path)?;
        check_range(
            "bundle.poll_seconds".to_owned(),
            raw.poll_seconds,
            1,
            86_400,
        )?;
        check_range("bundle.timeout_ms".to_owned(), raw.timeout_ms, 1, 60_000)?;
        if raw.max_bytes == 0 || raw.max_bytes > MAX_BUNDLE_BYTES {
            return Err(ConfigError::invalid(
                "bundle.max_bytes",
                format!("must be between 1 and {MAX_BUNDLE_BYTES}"),
            ));
        }
        if raw.scope.as_deref() == Some("") {
            return Err(ConfigError::invalid(
                "bundle.scope",
                "must not be empty when set",
            ));
        }
        if raw.keys.keys.is_empty() {
            return Err(ConfigError::invalid(
                "bundle.keys.keys",
                "at least one key is required",
            ));
        }
        let keys = raw
            .keys
            .keys
            .iter()
            .enumerate()
            .map(|(i, jwk)| key_entry(jwk, &Algorithm::ALL, &format!("bundle.keys.keys[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            source: raw.clone(),
            keys,
        })
    }

    /// Unpacks and verifies `bytes`; nothing in it is trusted before this returns `Ok`.
    pub fn open(&self, bytes: &[u8], now: u64) -> Result<VerifiedBundle, BundleError> {
        let limit = self.source.max_bytes;
        if bytes.len() > limit {
            return Err(BundleError::TooLarge(limit));
        }
        let tar = archive::gunzip(bytes, limit)?;
        let mut files = archive::untar(&tar, limit)?;
        let position = files
            .iter()
            .position(|f| f.name == ".signatures.json")
            .ok_or_else(|| BundleError::Signature("`.signatures.json` is missing".to_owned()))?;
        let signatures = files.swap_remove(position);
        let signature::Signed {
            files: mut signed,
            issued_at,
        } = signature::verify(
            &signatures.bytes,
            &self.keys,
            self.source.scope.as_deref(),
            now,
        )?;
        for file in &files {
            let expected = signed
                .remove(&file.name)
                .ok_or_else(|| BundleError::Unsigned(file.name.clone()))?;
            if signature::file_hash(&file.name, &file.bytes)? != expected {
                return Err(BundleError::HashMismatch(file.name.clone()));
            }
        }
        if let Some(missing) = signed.into_keys().next() {
            return Err(BundleError::Missing(missing));
        }
        read_contents(files, bytes, issued_at)
    }
}

/// A bundle whose signature and hashes were verified, ready to compile.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    /// The manifest's `revision`, or the archive's SHA-256 when it has none.
    pub revision: String,
    /// The signature's `iat`.
    pub issued_at: u64,
    pub modules: Vec<RawModule>,
    pub data: Map<String, Value>,
}

fn read_contents(
    files: Vec<archive::File>,
    archive_bytes: &[u8],
    issued_at: u64,
) -> Result<VerifiedBundle, BundleError> {
    let mut revision = None;
    let mut modules = Vec::new();
    let mut data = Map::new();
    for file in files {
        let data_error = |message: String| BundleError::Data {
            file: file.name.clone(),
            message,
        };
        let (dir, base) = match file.name.rsplit_once('/') {
            Some((dir, base)) => (Some(dir), base),
            None => (None, file.name.as_str()),
        };
        if file.name == ".manifest" {
            let manifest = crate::json_strict::parse(&file.bytes)
                .map_err(|err| data_error(err.to_string()))?;
            revision = match manifest.get("revision") {
                None => None,
                Some(Value::String(r)) => Some(r.clone()),
                Some(_) => return Err(data_error("`revision` must be a string".to_owned())),
            };
        } else if base.ends_with(".rego") {
            let source = String::from_utf8(file.bytes.clone())
                .map_err(|_| data_error("not UTF-8".to_owned()))?;
            modules.push(RawModule {
                name: file.name.clone(),
                source,
            });
        } else if base == "data.json" {
            let value = crate::json_strict::parse(&file.bytes)
                .map_err(|err| data_error(err.to_string()))?;
            let Value::Object(object) = value else {
                return Err(data_error("must hold a JSON object".to_owned()));
            };
            let path: Vec<&str> = dir.map(|d| d.split('/').collect()).unwrap_or_default();
            place(&mut data, &path, object).map_err(data_error)?;
        } else {
            return Err(BundleError::Unsupported(file.name.clone()));
        }
    }
    if modules.is_empty() {
        return Err(BundleError::Policy(
            "the bundle has no `.rego` module".to_owned(),
        ));
    }
    let revision = revision.filter(|r| !r.is_empty()).unwrap_or_else(|| {
        let digest = hmac_sha256::Hash::hash(archive_bytes);
        format!(
            "sha256:{}",
            crate::hex::lower(digest.get(..8).unwrap_or_default())
        )
    });
    Ok(VerifiedBundle {
        revision,
        issued_at,
        modules,
        data,
    })
}

/// Puts `object` at `path` in `data`; two files that define the same key refuse the bundle.
fn place(
    data: &mut Map<String, Value>,
    path: &[&str],
    object: Map<String, Value>,
) -> Result<(), String> {
    let mut node = data;
    for segment in path {
        let entry = node
            .entry((*segment).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        node = match entry {
            Value::Object(map) => map,
            _ => return Err(format!("`{segment}` is already a value, not an object")),
        };
    }
    for (key, value) in object {
        if node.contains_key(&key) {
            return Err(format!("`{key}` is defined by two data files"));
        }
        node.insert(key, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
