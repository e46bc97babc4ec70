//! The Bridle demo: a real Envoy with `bridle.wasm` in front of a sample upstream, and sample
//! agents sending allowed and refused requests. One line per request; exits non-zero when any
//! decision is not the expected one, so the demo doubles as a smoke test.
//!
//!   cargo run -p host-tests --bin bridle-demo            run the scenarios
//!   cargo run -p host-tests --bin bridle-demo -- --serve  then keep Envoy up for your own requests
//!
//! Tokens are signed with the demo-only key in `envoy/demo/` (never use it in production).

use std::process::ExitCode;

use host_tests::tokens::{unix_now, Claims, TestIssuer};
use host_tests::{demo, Envoy, EnvoyOptions, Error, Request, Response, Upstream};

/// What a scenario expects.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Allow,
    /// A local refusal: status and the `error` of the JSON body.
    Refuse(u16, &'static str),
}

struct Scenario {
    agent: &'static str,
    what: &'static str,
    request: Request,
    expect: Expect,
}

fn scenarios(issuer: &TestIssuer) -> Result<Vec<Scenario>, Error> {
    let research = demo::agent("research-bot");
    let token = |agent: &str| issuer.token_for(&demo::agent(agent));
    let get = |path: &str, token: &str| Request::get(path).bearer(token);
    Ok(vec![
        Scenario {
            agent: "research-bot",
            what: "lists reports",
            request: get("/api/reports", &token("research-bot")?),
            expect: Expect::Allow,
        },
        Scenario {
            agent: "research-bot",
            what: "reads one report",
            request: get("/api/reports/q3-revenue", &token("research-bot")?),
            expect: Expect::Allow,
        },
        Scenario {
            agent: "research-bot",
            what: "tries to write a report",
            request: Request::post("/api/reports")
                .bearer(&token("research-bot")?)
                .json(&serde_json::json!({"title": "rewritten"})),
            expect: Expect::Refuse(403, "forbidden"),
        },
        Scenario {
            agent: "research-bot",
            what: "tries to read deployments",
            request: get("/api/deployments/web", &token("research-bot")?),
            expect: Expect::Refuse(403, "forbidden"),
        },
        Scenario {
            agent: "deploy-bot",
            what: "reads a deployment",
            request: get("/api/deployments/web", &token("deploy-bot")?),
            expect: Expect::Allow,
        },
        Scenario {
            agent: "orphan-bot",
            what: "an agent without an owner",
            request: get("/api/reports", &token("orphan-bot")?),
            expect: Expect::Refuse(403, "forbidden"),
        },
        Scenario {
            agent: "intruder",
            what: "an agent not in the inventory",
            request: get("/api/reports", &token("intruder")?),
            expect: Expect::Refuse(403, "forbidden"),
        },
        Scenario {
            agent: "research-bot",
            what: "an expired token",
            request: get(
                "/api/reports",
                &issuer.mint(&Claims::new(&research).iat(-7200).exp(-3600))?,
            ),
            expect: Expect::Refuse(401, "unauthenticated"),
        },
        Scenario {
            agent: "research-bot",
            what: "a token for another audience",
            request: get(
                "/api/reports",
                &issuer.mint(&Claims::new(&research).aud("billing-api"))?,
            ),
            expect: Expect::Refuse(401, "unauthenticated"),
        },
        Scenario {
            agent: "research-bot",
            what: "a token signed by another key",
            request: get("/api/reports", &issuer.impostor()?.token_for(&research)?),
            expect: Expect::Refuse(401, "unauthenticated"),
        },
        Scenario {
            agent: "(anonymous)",
            what: "no token at all",
            request: Request::get("/api/reports"),
            expect: Expect::Refuse(401, "unauthenticated"),
        },
    ])
}

/// The decision as one human-readable string, and whether it is the expected one.
fn judge(response: &Response, expect: Expect) -> (String, bool) {
    let body = response.json().ok();
    let field = |name: &str| {
        body.as_ref()
            .and_then(|b| b.get(name))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    match expect {
        Expect::Allow => {
            let decision = response.header("x-bridle-decision-id").unwrap_or("none");
            // The upstream echoes what it received: the agent header set by the policy.
            let agent = body
                .as_ref()
                .and_then(|b| b.pointer("/headers/x-bridle-agent"))
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?");
            let ok = response.status == 200 && decision != "none";
            (
                format!("allow, forwarded as {agent} (decision {decision})"),
                ok,
            )
        }
        Expect::Refuse(status, error) => {
            let reasons: Vec<String> = body
                .as_ref()
                .and_then(|b| b.get("reasons"))
                .and_then(serde_json::Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let got = field("error");
            let ok = response.status == status && got == error;
            let shown = if got.is_empty() { response.text() } else { got };
            (format!("{shown}: {}", reasons.join("; ")), ok)
        }
    }
}

fn run(serve: bool) -> Result<bool, Error> {
    let issuer = demo::issuer()?;
    let upstream = Upstream::start()?;
    let config = demo::config(&issuer)?;
    println!(
        "bridle demo: starting Envoy with bridle.wasm (V8 compiles the module; a few seconds)"
    );
    let envoy = Envoy::start_with(&EnvoyOptions::new(config, upstream.port()))?;
    println!(
        "bridle demo: Envoy listening on 127.0.0.1:{}, upstream on 127.0.0.1:{}, environment prod\n",
        envoy.port(),
        upstream.port()
    );
    println!(
        "      {:<13} {:<31} {:<28} {:>6}  decision",
        "agent", "scenario", "request", "status"
    );
    let scenarios = scenarios(&issuer)?;
    let mut all_ok = true;
    let mut tokens = Vec::new();
    for scenario in &scenarios {
        if let Some((_, value)) = scenario
            .request
            .headers
            .iter()
            .find(|(n, _)| n == "authorization")
        {
            tokens.push(value.trim_start_matches("Bearer ").to_owned());
        }
        let response = envoy.send(&scenario.request)?;
        let (decision, ok) = judge(&response, scenario.expect);
        all_ok &= ok;
        println!(
            "{}  {:<13} {:<31} {:<28} {:>6}  {decision}",
            if ok { " ok " } else { "FAIL" },
            scenario.agent,
            scenario.what,
            format!("{} {}", scenario.request.method, scenario.request.target),
            response.status,
        );
    }
    let allowed = scenarios
        .iter()
        .filter(|s| s.expect == Expect::Allow)
        .count();
    let leaked = tokens.iter().any(|t| upstream.ever_saw(t));
    let forwarded_ok = upstream.count() == allowed && !leaked;
    all_ok &= forwarded_ok;
    println!(
        "\n{}  upstream received {} request(s) (expected {allowed}); credentials forwarded: {}",
        if forwarded_ok { " ok " } else { "FAIL" },
        upstream.count(),
        if leaked { "YES" } else { "none" },
    );
    let events = envoy.audit_events();
    println!(
        "      {} audit events in Envoy's log (`bridle.audit ` lines){}",
        events.len(),
        events
            .first()
            .map(|e| format!(", the first:\n      {e}"))
            .unwrap_or_default()
    );
    if serve {
        let token = issuer.mint(
            &Claims::new(&demo::agent("research-bot"))
                .at(unix_now())
                .exp(3600),
        )?;
        println!(
            "\nEnvoy stays up until you press Ctrl-C. Try (token valid for an hour):\n  \
             curl -i -H 'authorization: Bearer {token}' http://127.0.0.1:{}/api/reports\n\
             Envoy log: {}",
            envoy.port(),
            envoy.dir().join("envoy.log").display()
        );
        loop {
            std::thread::park();
        }
    }
    Ok(all_ok)
}

fn main() -> ExitCode {
    let mut serve = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--serve" => serve = true,
            _ => {
                eprintln!("usage: bridle-demo [--serve]");
                return ExitCode::from(2);
            }
        }
    }
    match run(serve) {
        Ok(true) => {
            println!("\nbridle demo: every decision was the expected one");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            eprintln!("\nbridle demo: some decisions were NOT the expected ones (see FAIL above)");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("bridle demo: {err}");
            ExitCode::FAILURE
        }
    }
}
