//! The policy's YAML decision cases (`policies/*/cases/*.yaml`) turned into real requests:
//! minted tokens, task credentials with delegation chains, MCP bodies, and one configuration
//! per environment. The same requests run through the proxy-wasm build (harness, Envoy) and the
//! edge build, and must reach the decision each case expects.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::config::ConfigBuilder;
use crate::tokens::{Alg, Claims, TestIssuer};
use crate::Error;

pub const WORKLOAD_ISSUER: &str = "spiffe://demo.bridle.dev";
pub const OIDC_ISSUER: &str = "https://idp.demo.bridle.dev";
pub const TASK_ISSUER: &str = "https://txn.demo.bridle.dev";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlCase {
    description: String,
    input: Value,
    expect: Expect,
}

/// What a case expects the decision to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub allow: bool,
    #[serde(default)]
    pub approval_required: bool,
    pub reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
}

impl Expect {
    /// The HTTP status a host answers for this decision (200: forwarded to the upstream).
    pub fn status(&self) -> u16 {
        if self.allow {
            200
        } else {
            403
        }
    }

    /// The `error` of the refusal body.
    pub fn error(&self) -> Option<&'static str> {
        match (self.allow, self.approval_required) {
            (true, _) => None,
            (false, true) => Some("approval_required"),
            (false, false) => Some("forbidden"),
        }
    }
}

/// One case as an HTTP request against the configuration `config`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestCase {
    pub name: String,
    pub description: String,
    pub config: String,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub expect: Expect,
}

/// Configurations by name, and the cases that use them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseSet {
    pub configs: BTreeMap<String, Value>,
    pub cases: Vec<RequestCase>,
}

fn str_at<'v>(value: &'v Value, pointer: &str) -> Option<&'v str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn bad(file: &str, what: &str) -> Error {
    Error::Token(format!("{file}: {what}"))
}

/// Reads every case of `cases_dir` and turns it into a request.
pub fn load(policy: &bridle_policies::ShippedPolicy, cases_dir: &Path) -> Result<CaseSet, Error> {
    let workload = TestIssuer::new(WORKLOAD_ISSUER, Alg::Es256)?;
    let oidc = TestIssuer::new(OIDC_ISSUER, Alg::Es256)?.with_profile("oidc");
    let task_issuer = TestIssuer::new(TASK_ISSUER, Alg::Es256)?.with_profile("txn-token");

    let mut files: Vec<_> = std::fs::read_dir(cases_dir)
        .map_err(|source| Error::Io {
            context: format!("reading {}", cases_dir.display()),
            source,
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();

    let mut tools: Map<String, Value> = Map::new();
    let mut environments: BTreeMap<String, Value> = BTreeMap::new();
    let mut cases = Vec::new();
    for file in &files {
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = std::fs::read_to_string(file).map_err(|source| Error::Io {
            context: format!("reading {}", file.display()),
            source,
        })?;
        let case: YamlCase = serde_yaml::from_str(&text).map_err(|e| bad(&name, &e.to_string()))?;
        let input = &case.input;

        let environment = input
            .get("environment")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let config = str_at(&environment, "/name").unwrap_or("none").to_owned();
        environments.insert(config.clone(), environment);

        let mut headers = Vec::new();
        let caller = match (
            str_at(input, "/identity/spiffe/id"),
            str_at(input, "/identity/subject"),
        ) {
            (Some(id), _) => {
                // A SPIFFE ID from the OIDC issuer: a case of an issuer that may not assert one.
                let issuer = match str_at(input, "/identity/issuer") {
                    Some(OIDC_ISSUER) => &oidc,
                    _ => &workload,
                };
                headers.push((
                    "authorization".to_owned(),
                    format!("Bearer {}", issuer.token_for(id)?),
                ));
                id.to_owned()
            }
            (None, Some(subject)) => {
                headers.push((
                    "authorization".to_owned(),
                    format!("Bearer {}", oidc.token_for(subject)?),
                ));
                subject.to_owned()
            }
            (None, None) => return Err(bad(&name, "input.identity needs spiffe.id or subject")),
        };

        let chain: Vec<&str> = input
            .pointer("/delegation/chain")
            .and_then(Value::as_array)
            .map(|c| {
                c.iter()
                    .filter_map(|a| a.get("sub").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        if input.get("task").is_some() || chain.len() > 1 {
            let scopes: Vec<&str> = input
                .pointer("/task/scopes")
                .and_then(Value::as_array)
                .map(|s| s.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let origin = chain.first().copied().unwrap_or("user:case-runner");
            let mut claims = Claims::new(origin)
                .typ("txntoken+jwt")
                .claim(
                    "txn",
                    json!(str_at(input, "/task/txn").unwrap_or("case-task")),
                )
                .claim("req_wl", json!(caller))
                .claim("scope", json!(scopes.join(" ")));
            // `act` nests from the current actor (last in the chain) inwards.
            let mut act: Option<Value> = None;
            for actor in chain.iter().skip(1) {
                act = Some(match act {
                    None => json!({"sub": actor}),
                    Some(inner) => json!({"sub": actor, "act": inner}),
                });
            }
            if let Some(act) = act {
                claims = claims.claim("act", act);
            }
            headers.push(("txn-token".to_owned(), task_issuer.mint(&claims)?));
        }

        let (method, path, body) = match input.get("intent") {
            Some(intent) if str_at(intent, "/protocol") == Some("mcp") => {
                let rpc = str_at(intent, "/rpc_method").unwrap_or("tools/call");
                let body = match str_at(intent, "/tool") {
                    Some(tool) => {
                        let annotation = json!({
                            "action": str_at(intent, "/action").unwrap_or("execute"),
                            "data_class": str_at(intent, "/data_class").unwrap_or("unclassified"),
                        });
                        if let Some(previous) = tools.insert(tool.to_owned(), annotation.clone()) {
                            if previous != annotation {
                                return Err(bad(
                                    &name,
                                    &format!(
                                        "tool `{tool}` is annotated differently in another case"
                                    ),
                                ));
                            }
                        }
                        let arguments = intent
                            .get("arguments")
                            .cloned()
                            .unwrap_or_else(|| json!({}));
                        json!({"jsonrpc": "2.0", "id": 1, "method": rpc, "params": {"name": tool, "arguments": arguments}})
                    }
                    None => json!({"jsonrpc": "2.0", "id": 1, "method": rpc, "params": {}}),
                };
                headers.push(("content-type".to_owned(), "application/json".to_owned()));
                (
                    "POST".to_owned(),
                    str_at(input, "/request/path").unwrap_or("/mcp").to_owned(),
                    Some(body.to_string()),
                )
            }
            _ => (
                str_at(input, "/request/method").unwrap_or("GET").to_owned(),
                str_at(input, "/request/path").unwrap_or("/").to_owned(),
                None,
            ),
        };
        cases.push(RequestCase {
            name,
            description: case.description,
            config,
            method,
            path,
            headers,
            body,
            expect: case.expect,
        });
    }

    // The OIDC issuer's SPIFFE subjects reach the policy, so that the policy's own check of
    // issuer and profile is what the cases exercise.
    let oidc_entry = crate::config::spiffe_subjects_entry(&oidc)?;
    let mut configs = BTreeMap::new();
    for (key, environment) in environments {
        let config = ConfigBuilder::with_policy(policy.config_block()?)
            .set(
                "issuers",
                json!([crate::config::issuer_entry(&workload)?, oidc_entry]),
            )
            .set("environment", environment)
            .set(
                "task",
                json!({"issuers": [crate::config::issuer_entry(&task_issuer)?]}),
            )
            .set(
                "routes",
                json!([{"name": "mcp", "path": "/mcp", "methods": ["POST"], "protocol": "mcp"}]),
            )
            .set("mcp", json!({"tools": Value::Object(tools.clone())}))
            .build();
        configs.insert(key, config);
    }
    Ok(CaseSet { configs, cases })
}

/// The shipped agent policy's cases.
pub fn agents() -> Result<CaseSet, Error> {
    let dir = crate::paths::repo_root()
        .join("policies")
        .join(bridle_policies::AGENTS.cases_dir);
    load(&bridle_policies::AGENTS, &dir)
}
