//! Bridle configuration documents for tests and the demo, built from test issuers and policies.
//!
//! The result is a `serde_json::Value`: tests that need a broken configuration edit it directly.

use serde_json::{json, Map, Value};

use crate::tokens::TestIssuer;
use crate::Error;

/// The `issuers[]` entry that trusts `issuer`.
pub fn issuer_entry(issuer: &TestIssuer) -> Result<Value, Error> {
    Ok(json!({
        "issuer": issuer.iss,
        "profile": issuer.profile,
        "audiences": issuer.audiences,
        "algorithms": [issuer.alg.name()],
        "jwks": {"keys": [issuer.jwk()?]},
    }))
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
