//! Bridle configuration documents for tests and the demo, built from test issuers and policies.
//!
//! The result is a `serde_json::Value`: tests that need a broken configuration edit it directly.

use serde_json::{json, Map, Value};

use crate::tokens::TestIssuer;
use crate::Error;

/// The `issuers[]` entry that trusts `issuer` (a JWT-SVID issuer for its trust domain).
pub fn issuer_entry(issuer: &TestIssuer) -> Result<Value, Error> {
    let mut entry = Map::new();
    entry.insert("issuer".into(), json!(issuer.iss));
    entry.insert("profile".into(), json!(issuer.profile));
    entry.insert("audiences".into(), json!(issuer.audiences));
    entry.insert("algorithms".into(), json!([issuer.alg.name()]));
    entry.insert("jwks".into(), json!({"keys": [issuer.jwk()?]}));
    if issuer.profile == "jwt-svid" {
        entry.insert("trust_domain".into(), json!(issuer.trust_domain));
    }
    Ok(Value::Object(entry))
}

/// The entry of a non-JWT-SVID issuer allowed to assert SPIFFE IDs of its trust domain
/// (`spiffe_subjects`).
pub fn spiffe_subjects_entry(issuer: &TestIssuer) -> Result<Value, Error> {
    let mut entry = issuer_entry(issuer)?;
    if let Some(fields) = entry.as_object_mut() {
        fields.insert("spiffe_subjects".into(), json!(true));
        fields.insert("trust_domain".into(), json!(issuer.trust_domain));
    }
    Ok(entry)
}

/// A `policy` block that allows every request it is asked about.
pub fn allow_all_policy() -> Value {
    const ALLOW: &str =
        "package t\nimport rego.v1\n\ndecision := {\"allow\": true, \"reasons\": []}\n";
    inline_policy("data.t.decision", &[("t.rego", ALLOW)], json!({}))
}

/// The entry of `issuer` with its keys fetched from `source` (`jwks_source`), not inline.
pub fn fetched_keys_entry(issuer: &TestIssuer, source: Value) -> Result<Value, Error> {
    let mut entry = issuer_entry(issuer)?;
    if let Some(fields) = entry.as_object_mut() {
        fields.remove("jwks");
        fields.insert("jwks_source".into(), source);
    }
    Ok(entry)
}

/// A JWKS document with the public keys of `issuers`.
pub fn jwks(issuers: &[&TestIssuer]) -> Result<Value, Error> {
    let keys = issuers
        .iter()
        .map(|issuer| issuer.jwk())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({ "keys": keys }))
}

/// The `policy` block of the shipped agent policy (`policies/agents/`).
pub fn agents_policy() -> Result<Value, Error> {
    Ok(bridle_policies::AGENTS.config_block()?)
}

/// A `policy` block from inline Rego.
pub fn inline_policy(entrypoint: &str, modules: &[(&str, &str)], data: Value) -> Value {
    let modules: Vec<Value> = modules
        .iter()
        .map(|(name, source)| json!({"name": name, "source": source}))
        .collect();
    json!({"entrypoint": entrypoint, "modules": modules, "data": data})
}

/// Builds a configuration document.
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    issuers: Vec<Value>,
    policy: Value,
    extra: Map<String, Value>,
}

impl ConfigBuilder {
    /// A configuration with the shipped agent policy and no issuer yet.
    pub fn agents() -> Result<Self, Error> {
        Ok(Self::with_policy(agents_policy()?))
    }

    pub fn with_policy(policy: Value) -> Self {
        Self {
            issuers: Vec::new(),
            policy,
            extra: Map::new(),
        }
    }

    /// Trusts this issuer.
    pub fn issuer(mut self, issuer: &TestIssuer) -> Result<Self, Error> {
        self.issuers.push(issuer_entry(issuer)?);
        Ok(self)
    }

    /// `environment.name`.
    pub fn environment(self, name: &str) -> Self {
        self.set("environment", json!({"name": name}))
    }

    /// Any other top-level block (`identity`, `response`, `routes`, ...), replacing a previous
    /// one of that name.
    pub fn set(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    pub fn build(self) -> Value {
        let mut config = Map::new();
        config.insert("issuers".into(), Value::Array(self.issuers));
        config.insert("policy".into(), self.policy);
        for (key, value) in self.extra {
            config.insert(key, value);
        }
        Value::Object(config)
    }
}
