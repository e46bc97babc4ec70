//! The demo's fixed material: the demo-only issuer in `envoy/demo/` and the shipped agent
//! policy, evaluated as production.

use serde_json::Value;

use crate::config::ConfigBuilder;
use crate::tokens::TestIssuer;
use crate::{paths, Error, IoContext};

/// The demo trust domain's issuer (`iss` of its JWT-SVIDs).
pub const ISSUER: &str = "spiffe://demo.bridle.dev";

/// The SPIFFE ID of an agent in the demo trust domain.
pub fn agent(name: &str) -> String {
    format!("{ISSUER}/agent/{name}")
}

/// The issuer whose key is committed in `envoy/demo/demo-issuer.jwk.json` (demo only).
pub fn issuer() -> Result<TestIssuer, Error> {
    let path = paths::demo_issuer_key();
    let text = std::fs::read_to_string(&path).context(|| format!("reading {}", path.display()))?;
    let jwk: Value = serde_json::from_str(&text)?;
    TestIssuer::from_private_jwk(ISSUER, &jwk)
}

/// The demo's Bridle configuration: the demo issuer, the shipped agent policy, `prod`.
pub fn config(issuer: &TestIssuer) -> Result<Value, Error> {
    Ok(ConfigBuilder::agents()?
        .issuer(issuer)?
        .environment("prod")
        .build())
}
