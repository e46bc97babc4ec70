//! Requests, identities and checks the fail-open tests share, in the harness
//! (`harness_fail_open.rs`) and in Envoy (`envoy_fail_open.rs`): the demo agents, MCP
//! `tools/call` bodies, a UTF-7 body that names another tool than it seems to, the issuers of
//! the SPIFFE-ID cases, and a look into a refusal's `reasons`.
//! Also the delegated-credential scenario (`harness_delegated_credentials.rs`,
//! `envoy_delegated_credentials.rs`).

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::config::{spiffe_subjects_entry, ConfigBuilder};
use crate::tokens::Claims;
use crate::tokens::{Alg, TestIssuer};
use crate::{demo, Error};

/// research-bot's SPIFFE ID (`demo::agent("research-bot")`).
pub const RESEARCH: &str = "spiffe://demo.bridle.dev/agent/research-bot";
/// deploy-bot's SPIFFE ID (`demo::agent("deploy-bot")`).
pub const DEPLOY: &str = "spiffe://demo.bridle.dev/agent/deploy-bot";
/// deploy-bot's owner, as the tests' agent inventories record it.
pub const DEPLOY_OWNER: &str = "platform-team@demo.bridle.dev";
/// The header carrying Bridle's decision id, to the caller and to the upstream.
pub const DECISION_HEADER: &str = "x-bridle-decision-id";

/// A JSON-RPC `tools/call` (id 7) of `tool` with `arguments: {"id": "q3"}`, in UTF-8.
pub fn tools_call(tool: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
           "params": {"name": tool, "arguments": {"id": "q3"}}})
    .to_string()
}

/// A refusal body's `reasons` has one containing `fragment`.
pub fn has_reason(body: &Value, fragment: &str) -> bool {
    body.get("reasons")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|r| r.contains(fragment))
}

/// UTF-7 (RFC 2152) of `text`: characters outside the directly encoded set go as `+`, the
/// base64 of their UTF-16BE, `-`.
pub fn utf7(text: &str) -> String {
    let direct = |c: char| c.is_ascii_alphanumeric() || "'(),-./:? ".contains(c);
    let mut out = String::new();
    let mut run: Vec<u16> = Vec::new();
    let flush = |run: &mut Vec<u16>, out: &mut String| {
        if !run.is_empty() {
            let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('+');
            out.push_str(&STANDARD_NO_PAD.encode(bytes));
            out.push('-');
            run.clear();
        }
    };
    for c in text.chars() {
        if direct(c) {
            flush(&mut run, &mut out);
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Decodes UTF-7 as an upstream honouring `charset=utf-7` would (`+-` is a literal `+`);
/// `None` when a shifted run is not base64 or not UTF-16.
pub fn from_utf7(text: &str) -> Option<String> {
    let mut units: Vec<u16> = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '+' {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
            continue;
        }
        let mut b64 = String::new();
        while let Some(&next) = chars.peek() {
            if next.is_ascii_alphanumeric() || next == '+' || next == '/' {
                b64.push(next);
                chars.next();
            } else {
                break;
            }
        }
        if chars.peek() == Some(&'-') {
            chars.next();
        }
        if b64.is_empty() {
            units.push(u16::from(b'+'));
            continue;
        }
        let bytes = STANDARD_NO_PAD.decode(&b64).ok()?;
        units.extend(
            bytes
                .chunks_exact(2)
                .filter_map(|pair| <[u8; 2]>::try_from(pair).ok())
                .map(u16::from_be_bytes),
        );
    }
    String::from_utf16(&units).ok()
}

/// A `tools/call` of `read_report` whose `arguments.id`, read as UTF-7, closes the arguments
/// and names `deploy_service` as the tool (a JSON parser keeps the last `name`). Read as UTF-8
/// it is a harmless `read_report` call.
pub fn utf7_smuggling_body() -> Vec<u8> {
    let smuggled = utf7(r#"q3"},"name":"deploy_service","arguments":{"id":"q3"#);
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"read_report","arguments":{{"id":"{smuggled}"}}}}}}"#
    )
    .into_bytes()
}

/// The issuers of the SPIFFE-ID cases: only a JWT-SVID issuer, or an issuer the configuration
/// lets assert them (`spiffe_subjects: true`), gives a caller a SPIFFE ID.
pub struct SpiffeIssuers {
    /// The demo trust domain's JWT-SVID issuer ([`demo::ISSUER`]).
    pub svid: TestIssuer,
    /// An OIDC issuer: a `sub` that looks like a SPIFFE ID is just a name.
    pub plain_oidc: TestIssuer,
    /// An OIDC issuer the configuration lets assert SPIFFE IDs.
    pub trusted_oidc: TestIssuer,
}

impl SpiffeIssuers {
    /// Three fresh ES256 issuers.
    pub fn new() -> Result<Self, Error> {
        Ok(Self {
            svid: TestIssuer::new(demo::ISSUER, Alg::Es256)?,
            plain_oidc: TestIssuer::new("https://idp.demo.bridle.dev", Alg::Es256)?
                .with_profile("oidc"),
            trusted_oidc: TestIssuer::new("https://trusted-idp.demo.bridle.dev", Alg::Es256)?
                .with_profile("oidc"),
        })
    }

    /// `config` built trusting the three issuers after any it has, in this order (so
    /// `issuers[0]` to `issuers[2]` of a builder without issuers); the entry of
    /// [`trusted_oidc`](Self::trusted_oidc) has `spiffe_subjects: true`.
    pub fn config(&self, config: ConfigBuilder) -> Result<Value, Error> {
        let trusted = spiffe_subjects_entry(&self.trusted_oidc)?;
        let mut config = config.issuer(&self.svid)?.issuer(&self.plain_oidc)?.build();
        if let Some(issuers) = config.get_mut("issuers").and_then(Value::as_array_mut) {
            issuers.push(trusted);
        }
        Ok(config)
    }
}

/// research-bot's owner, as the shipped agent inventory records it.
pub const RESEARCH_OWNER: &str = "research-team@demo.bridle.dev";

/// A token-exchange service (RFC 8693) of the demo trust domain: its access tokens for a user
/// name the agent acting for her (`act`), and the configuration lets it assert SPIFFE IDs.
pub const DELEGATING_STS: &str = "https://sts.demo.bridle.dev";
/// Whom the delegated credentials act for (their `sub`).
pub const ALICE: &str = "user:alice";
/// The header in which [`DelegatedCredentials::config`]'s policy tells the upstream what it saw.
pub const SEEN_HEADER: &str = "x-policy-saw";

/// The shipped agent policy's decision, and on an allow a header with what that policy was
/// given about the caller and the delegation.
const SEEN_POLICY: &str = r#"package seen
import rego.v1

shipped := data.bridle.agents.decision

decision := shipped if not shipped.allow

decision := object.union(shipped, {"headers": object.union(object.get(shipped, "headers", {}), {"x-policy-saw": json.marshal(saw)})}) if shipped.allow

saw := {
	"subject": object.get(input.identity, "subject", null),
	"principal": object.get(input.identity, "principal", null),
	"spiffe": object.get(input.identity, ["spiffe", "id"], null),
	"delegation": input.delegation,
}
"#;

/// What a host should do with a request of [`DelegatedCredentials::cases`].
#[derive(Debug, Clone, PartialEq)]
pub enum DelegatedExpect {
    /// Forwarded (200): the upstream sees `agent` in `x-bridle-agent` and, in [`SEEN_HEADER`],
    /// what the policy saw.
    Forwarded { agent: String, saw: Value },
    /// Refused, nothing forwarded, with this status, JSON `error` and only reason.
    Refused {
        status: u16,
        error: &'static str,
        reason: String,
    },
}

/// One request: its credentials and path, what it should get, and the caller its audit event
/// should name (`agent.subject`, `agent.principal`) where the credential was verified.
#[derive(Debug, Clone)]
pub struct DelegatedCase {
    pub name: &'static str,
    pub path: &'static str,
    /// `(header, value)`: `authorization`, and `txn-token` for a task credential.
    pub headers: Vec<(&'static str, String)>,
    pub expect: DelegatedExpect,
    pub audited: Option<(String, Option<&'static str>)>,
}

/// What a host did with a case's request.
#[derive(Debug, Clone)]
pub struct DelegatedObserved {
    pub status: u16,
    /// The response body, as JSON (`null` when it is not).
    pub body: Value,
    /// The upstream received the request.
    pub forwarded: bool,
    /// `x-bridle-agent` and [`SEEN_HEADER`] as the upstream received them.
    pub agent: Option<String>,
    pub saw: Option<String>,
    /// The audit event of the decision (by its id).
    pub event: Option<Value>,
}

impl DelegatedCase {
    /// Whether `observed` is what the case expects; `Err` says what differs.
    pub fn check(&self, observed: &DelegatedObserved) -> Result<(), String> {
        let failed = |what: String| Err(format!("{}: {what}: {observed:?}", self.name));
        match &self.expect {
            DelegatedExpect::Forwarded { agent, saw } => {
                if observed.status != 200 || !observed.forwarded {
                    return failed("expected 200, forwarded".into());
                }
                if observed.agent.as_deref() != Some(agent.as_str()) {
                    return failed(format!("expected the upstream to see agent `{agent}`"));
                }
                let seen: Option<Value> = observed
                    .saw
                    .as_deref()
                    .and_then(|s| serde_json::from_str(s).ok());
                if seen.as_ref() != Some(saw) {
                    return failed(format!("expected the policy to see {saw}"));
                }
            }
            DelegatedExpect::Refused {
                status,
                error,
                reason,
            } => {
                if observed.status != *status || observed.forwarded {
                    return failed(format!("expected {status}, not forwarded"));
                }
                if observed.body.get("error").and_then(Value::as_str) != Some(error)
                    || observed.body.get("reasons") != Some(&json!([reason]))
                {
                    return failed(format!("expected error `{error}`, reason `{reason}`"));
                }
            }
        }
        let Some((subject, principal)) = &self.audited else {
            return Ok(());
        };
        let agent = observed.event.as_ref().map(|e| &e["agent"]);
        if agent.map(|a| &a["subject"]) != Some(&json!(subject))
            || agent.map(|a| &a["principal"]) != Some(&principal.map_or(Value::Null, Value::from))
        {
            return failed(format!(
                "expected the audit event to name subject `{subject}`, principal {principal:?}"
            ));
        }
        Ok(())
    }
}

/// Credentials a token-exchange service issues to an agent acting for a user (RFC 8693: `sub`
/// the user, `act.sub` the agent), as the only credential of a request, under the shipped
/// agent policy; and the two-credential shape (the agent's own JWT-SVID and a task credential
/// whose `act` names it). The scenario of `harness_delegated_credentials.rs` and
/// `envoy_delegated_credentials.rs`.
pub struct DelegatedCredentials {
    /// The demo trust domain's JWT-SVID issuer.
    pub svid: TestIssuer,
    /// [`DELEGATING_STS`]: access tokens, SPIFFE IDs of the demo trust domain.
    pub sts: TestIssuer,
    /// The issuer of task credentials (`txn-token`).
    pub tasks: TestIssuer,
}

impl DelegatedCredentials {
    pub fn new() -> Result<Self, Error> {
        Ok(Self {
            svid: TestIssuer::new(demo::ISSUER, Alg::Es256)?,
            sts: TestIssuer::new(DELEGATING_STS, Alg::Es256)?.with_profile("access-token"),
            tasks: TestIssuer::new("https://txn.demo.bridle.dev", Alg::Es256)?
                .with_profile("txn-token"),
        })
    }

    /// The shipped agent policy in `prod`, its data trusting the STS to assert the demo trust
    /// domain's SPIFFE IDs in access tokens, wrapped to report what it saw ([`SEEN_HEADER`]);
    /// the agent inventory bounds delegation; task credentials are optional.
    pub fn config(&self) -> Result<Value, Error> {
        let mut policy = crate::config::agents_policy()?;
        if let Some(policy) = policy.as_object_mut() {
            policy.insert("entrypoint".into(), json!("data.seen.decision"));
            if let Some(modules) = policy.get_mut("modules").and_then(Value::as_array_mut) {
                modules.push(json!({"name": "seen.rego", "source": SEEN_POLICY}));
            }
            if let Some(trusted) = policy
                .get_mut("data")
                .and_then(|d| d.get_mut("spiffe_issuers"))
                .and_then(Value::as_object_mut)
            {
                trusted.insert(
                    self.sts.iss.clone(),
                    json!({"profiles": ["access-token"], "trust_domain": self.sts.trust_domain}),
                );
            }
        }
        let mut config = ConfigBuilder::with_policy(policy)
            .issuer(&self.svid)?
            .environment("prod")
            .set("delegation", json!({"inventory": "agents"}))
            .set(
                "task",
                json!({"issuers": [crate::config::issuer_entry(&self.tasks)?]}),
            )
            .build();
        if let Some(issuers) = config.get_mut("issuers").and_then(Value::as_array_mut) {
            issuers.push(spiffe_subjects_entry(&self.sts)?);
        }
        Ok(config)
    }

    /// An STS access token for [`ALICE`] with this `act` (and any other claims).
    pub fn delegated(&self, act: Value, extra: &[(&str, Value)]) -> Result<String, Error> {
        let mut claims = Claims::new(ALICE).typ("at+jwt").claim("act", act);
        for (name, value) in extra {
            claims = claims.claim(name, value.clone());
        }
        self.sts.mint(&claims)
    }

    /// A task credential for [`ALICE`], bound to `caller`, with this `act`.
    pub fn task(&self, caller: &str, act: Value) -> Result<String, Error> {
        self.tasks.mint(
            &Claims::new(ALICE)
                .typ("txntoken+jwt")
                .claim("txn", json!("txn-delegated"))
                .claim("req_wl", json!(caller))
                .claim("act", act),
        )
    }

    /// Every case, in the order to run them.
    pub fn cases(&self) -> Result<Vec<DelegatedCase>, Error> {
        const PLANNER: &str = "spiffe://demo.bridle.dev/agent/planner";
        let bearer = |token: String| vec![("authorization", format!("Bearer {token}"))];
        let with_task = |token: String, task: String| {
            let mut headers = bearer(token);
            headers.push(("txn-token", task));
            headers
        };
        let delegation = |chain: &[&str]| {
            let subs: Vec<Value> = chain.iter().map(|s| json!({"sub": s})).collect();
            json!({"depth": chain.len().saturating_sub(1), "origin": chain.first(),
                   "actor": chain.last(), "chain": subs})
        };
        let saw = |agent: &str, principal: Option<&str>, chain: &[&str]| {
            json!({"subject": agent, "principal": principal, "spiffe": agent,
                   "delegation": delegation(chain)})
        };
        let forwarded = |agent: &str, saw: Value| DelegatedExpect::Forwarded {
            agent: agent.to_owned(),
            saw,
        };
        let forbidden = |reason: String| DelegatedExpect::Refused {
            status: 403,
            error: "forbidden",
            reason,
        };
        let delegated_to = |agent: &str| Some((agent.to_owned(), Some(ALICE)));
        let research = json!({"sub": RESEARCH});
        let other_domain = "spiffe://elsewhere.example/agent/research-bot";
        Ok(vec![
            DelegatedCase {
                name: "delegated to research-bot, reading reports",
                path: "/api/reports",
                headers: bearer(self.delegated(research.clone(), &[])?),
                expect: forwarded(RESEARCH, saw(RESEARCH, Some(ALICE), &[ALICE, RESEARCH])),
                audited: delegated_to(RESEARCH),
            },
            DelegatedCase {
                name: "delegated to research-bot, deploying: judged as research-bot",
                path: "/api/deployments/web",
                headers: bearer(self.delegated(research.clone(), &[])?),
                expect: forbidden(format!("agent {RESEARCH} may not GET /api/deployments/web")),
                audited: delegated_to(RESEARCH),
            },
            DelegatedCase {
                name: "delegated, `may_act` names the actor",
                path: "/api/reports",
                headers: bearer(self.delegated(
                    research.clone(),
                    &[("may_act", json!([{"sub": DEPLOY}, {"sub": RESEARCH}]))],
                )?),
                expect: forwarded(RESEARCH, saw(RESEARCH, Some(ALICE), &[ALICE, RESEARCH])),
                audited: delegated_to(RESEARCH),
            },
            DelegatedCase {
                name: "delegated, `may_act` names another agent",
                path: "/api/reports",
                headers: bearer(
                    self.delegated(research.clone(), &[("may_act", json!({"sub": DEPLOY}))])?,
                ),
                expect: forbidden(format!(
                    "`{RESEARCH}` is not permitted to act for `{ALICE}` (`may_act`)"
                )),
                audited: delegated_to(RESEARCH),
            },
            DelegatedCase {
                name: "delegated two hops down to research-bot (its maximum is 1)",
                path: "/api/reports",
                headers: bearer(
                    self.delegated(json!({"sub": RESEARCH, "act": {"sub": PLANNER}}), &[])?,
                ),
                expect: forbidden(format!(
                    "agent {RESEARCH} may not act 2 hops down a delegation chain (at most 1)"
                )),
                audited: delegated_to(RESEARCH),
            },
            DelegatedCase {
                name: "delegated two hops down to deploy-bot (its maximum is 2)",
                path: "/api/reports",
                headers: bearer(
                    self.delegated(json!({"sub": DEPLOY, "act": {"sub": PLANNER}}), &[])?,
                ),
                expect: forwarded(DEPLOY, saw(DEPLOY, Some(ALICE), &[ALICE, PLANNER, DEPLOY])),
                audited: delegated_to(DEPLOY),
            },
            DelegatedCase {
                name: "delegated to an actor outside the STS's trust domain",
                path: "/api/reports",
                headers: bearer(self.delegated(json!({"sub": other_domain}), &[])?),
                expect: DelegatedExpect::Refused {
                    status: 401,
                    error: "unauthenticated",
                    reason: format!(
                        "SPIFFE ID `{other_domain}` is outside trust domain `{}` of issuer `{}`",
                        self.sts.trust_domain, self.sts.iss
                    ),
                },
                audited: None,
            },
            DelegatedCase {
                name: "delegated, with a task credential whose chain ends in the actor",
                path: "/api/reports",
                headers: with_task(
                    self.delegated(research.clone(), &[])?,
                    self.task(RESEARCH, research.clone())?,
                ),
                expect: forwarded(RESEARCH, saw(RESEARCH, Some(ALICE), &[ALICE, RESEARCH])),
                audited: delegated_to(RESEARCH),
            },
            DelegatedCase {
                name: "delegated, with a task credential whose chain ends in another agent",
                path: "/api/reports",
                headers: with_task(
                    self.delegated(research.clone(), &[])?,
                    self.task(RESEARCH, json!({"sub": DEPLOY}))?,
                ),
                expect: forbidden(format!(
                    "delegation chain's current actor `{DEPLOY}` is not the caller `{RESEARCH}`"
                )),
                audited: delegated_to(RESEARCH),
            },
            // Two credentials: the agent's own JWT-SVID, the delegation in the task credential.
            DelegatedCase {
                name: "research-bot's JWT-SVID with a task credential delegated to it",
                path: "/api/reports",
                headers: with_task(
                    self.svid.token_for(RESEARCH)?,
                    self.task(RESEARCH, research)?,
                ),
                expect: forwarded(RESEARCH, saw(RESEARCH, None, &[ALICE, RESEARCH])),
                audited: Some((RESEARCH.to_owned(), None)),
            },
        ])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn the_agents_are_the_demo_agents() {
        assert_eq!(RESEARCH, demo::agent("research-bot"));
        assert_eq!(DEPLOY, demo::agent("deploy-bot"));
    }

    #[test]
    fn utf7_round_trips() {
        for text in ["plain", r#"q3"},"name":"x""#, "a+b", "ünï €", "🦀 and more"] {
            assert_eq!(from_utf7(&utf7(text)).as_deref(), Some(text), "{text}");
        }
        assert_eq!(from_utf7("1 +- 1").as_deref(), Some("1 + 1"));
        assert_eq!(from_utf7("+2D0-"), None, "a lone surrogate is not UTF-16");
    }

    #[test]
    fn the_smuggling_body_names_another_tool_only_as_utf7() {
        let body = String::from_utf8(utf7_smuggling_body()).unwrap();
        assert!(body.contains("+ACIAfQ-,+ACI-name+ACI-:+ACI-deploy+AF8-service"));
        let as_utf8: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(as_utf8["params"]["name"], "read_report");
        assert!(!body.contains("deploy_service"));
        let as_utf7: Value = serde_json::from_str(&from_utf7(&body).unwrap()).unwrap();
        assert_eq!(as_utf7["params"]["name"], "deploy_service");
    }

    #[test]
    fn only_the_trusted_oidc_issuer_asserts_spiffe_subjects() {
        let issuers = SpiffeIssuers::new().unwrap();
        let config = issuers
            .config(ConfigBuilder::with_policy(json!({})))
            .unwrap();
        let entries = config["issuers"].as_array().unwrap();
        let named: Vec<(&str, bool)> = entries
            .iter()
            .map(|e| {
                let subjects = e.get("spiffe_subjects").is_some_and(|v| v == true);
                (e["issuer"].as_str().unwrap(), subjects)
            })
            .collect();
        assert_eq!(
            named,
            [
                (issuers.svid.iss.as_str(), false),
                (issuers.plain_oidc.iss.as_str(), false),
                (issuers.trusted_oidc.iss.as_str(), true),
            ]
        );
    }

    #[test]
    fn has_reason_looks_into_every_reason() {
        let body = json!({"reasons": ["first", "the `;` one"]});
        assert!(has_reason(&body, "`;`"));
        assert!(!has_reason(&body, "missing"));
        assert!(!has_reason(&json!({}), ""));
    }
}
