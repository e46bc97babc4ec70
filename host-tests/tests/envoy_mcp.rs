//! Real MCP traffic through real Envoy with Bridle: the official MCP Python SDK's server as the
//! upstream and its client as the agent, carrying minted workload and task tokens.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

static PLANS: AtomicUsize = AtomicUsize::new(0);

use host_tests::{Alg, Claims, ConfigBuilder, Envoy, EnvoyOptions, TestIssuer};
use serde_json::{json, Value};

const RESEARCH: &str = "spiffe://demo.bridle.dev/agent/research-bot";
const DEPLOY: &str = "spiffe://demo.bridle.dev/agent/deploy-bot";

fn python() -> PathBuf {
    let python = host_tests::paths::repo_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh",
        python.display()
    );
    python
}

fn mcp_dir() -> PathBuf {
    host_tests::paths::repo_root().join("host-tests/mcp")
}

/// The SDK's MCP server, recording every request it receives.
struct McpServer {
    child: Child,
    port: u16,
    record: PathBuf,
}

impl McpServer {
    fn start(dir: &std::path::Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let record = dir.join("upstream.jsonl");
        let mut child = Command::new(python())
            .arg(mcp_dir().join("server.py"))
            .args(["--port", &port.to_string(), "--record"])
            .arg(&record)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "mcp server did not start");
        Self {
            child,
            port,
            record,
        }
    }

    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for McpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the SDK's client with `headers` on every request; one JSON object per step.
fn run_client(
    envoy: &Envoy,
    headers: &[(&str, String)],
    plan: Value,
    dir: &std::path::Path,
) -> Vec<Value> {
    run_client_in(envoy, "legacy", headers, plan, dir)
}

/// `mode`: `legacy` (protocol 2025-11-25, initialize handshake) or `modern` (2026-07-28,
/// `server/discover`, `Mcp-Method`/`Mcp-Name` headers).
fn run_client_in(
    envoy: &Envoy,
    mode: &str,
    headers: &[(&str, String)],
    plan: Value,
    dir: &std::path::Path,
) -> Vec<Value> {
    let plan_path = dir.join(format!(
        "plan-{}.json",
        PLANS.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&plan_path, plan.to_string()).unwrap();
    let mut command = Command::new(python());
    command
        .arg(mcp_dir().join("client.py"))
        .args(["--mode", mode])
        .args(["--url", &format!("http://127.0.0.1:{}/mcp", envoy.port())]);
    for (name, value) in headers {
        command.args(["--header", &format!("{name}: {value}")]);
    }
    let output = command.arg("--plan").arg(&plan_path).output().unwrap();
    assert!(
        output.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn call(tool: &str, arguments: Value) -> Value {
    json!({"op": "call", "tool": tool, "arguments": arguments})
}

fn reasons(step: &Value) -> Vec<String> {
    step["body"]["reasons"]
        .as_array()
        .map(|r| r.iter().map(|x| x.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn mcp_sdk_client_and_server_through_envoy_and_bridle() {
    let dir = tempdir();
    let server = McpServer::start(&dir);
    let workload = TestIssuer::new("spiffe://demo.bridle.dev", Alg::Es256).unwrap();
    let tasks = TestIssuer::new("https://txn.demo.bridle.dev", Alg::Es256)
        .unwrap()
        .with_profile("txn-token");
    let config = ConfigBuilder::agents()
        .unwrap()
        .issuer(&workload)
        .unwrap()
        .environment("prod")
        .set("task", json!({"issuers": [host_tests::config::issuer_entry(&tasks).unwrap()], "max_lifetime_seconds": 600}))
        .set("delegation", json!({"max_depth": 4, "inventory": "agents"}))
        .set("routes", json!([{"name": "mcp", "path": "/mcp", "methods": ["POST"], "protocol": "mcp", "require_task": true}]))
        .set("mcp", json!({"filter_tools_list": true, "tools": {
            "list_reports": {"action": "read", "data_class": "internal"},
            "read_report": {"action": "read", "data_class": "internal"},
            "deploy_service": {"action": "execute", "data_class": "infrastructure"},
            "read_customer_record": {"action": "read", "data_class": "pii"}}}))
        .build();
    let envoy = Envoy::start_with(&EnvoyOptions::new(config, server.port)).unwrap();

    let task = |agent: &str, lifetime: i64, extra: &[(&str, Value)]| {
        let mut claims = Claims::new("user:alice")
            .typ("txntoken+jwt")
            .claim("txn", json!(format!("task-{}", lifetime)))
            .claim("req_wl", json!(agent))
            .claim("scope", json!("reports:read"))
            .exp(lifetime);
        for (name, value) in extra {
            claims = claims.claim(name, value.clone());
        }
        tasks.mint(&claims).unwrap()
    };
    let research = [
        (
            "authorization",
            format!("Bearer {}", workload.token_for(RESEARCH).unwrap()),
        ),
        ("txn-token", task(RESEARCH, 300, &[])),
    ];

    // In both protocol generations: the agent's own tools work; the list it is shown holds
    // only those; forbidden tools and a header that disagrees with the body are refused.
    for mode in ["legacy", "modern"] {
        let steps = run_client_in(
            &envoy,
            mode,
            &research,
            json!([
                {"op": "initialize"},
                {"op": "list_tools"},
                call("read_report", json!({"id": "q3"})),
                call("deploy_service", json!({"service": "web", "env": "prod"})),
                {"op": "call", "tool": "read_report", "arguments": {"id": "q3"}, "headers": {"Mcp-Name": "deploy_service"}},
            ]),
            &dir,
        );
        assert_eq!(steps[0]["ok"], true, "{steps:?}");
        assert_eq!(
            steps[1]["result"],
            json!(["list_reports", "read_report"]),
            "{:?}",
            steps[1]
        );
        assert_eq!(steps[2]["ok"], true, "{:?}", steps[2]);
        assert_eq!(steps[3]["status"], 403, "{:?}", steps[3]);
        assert!(
            reasons(&steps[3]).contains(&format!(
                "agent {RESEARCH} may not call tool deploy_service"
            )),
            "{:?}",
            steps[3]
        );
        assert_eq!(steps[4]["status"], 400, "{:?}", steps[4]);
        assert_eq!(
            reasons(&steps[4]),
            ["header `mcp-name` says `deploy_service` but the body says `read_report`"]
        );
    }

    // Credentials of the wrong shape are refused before anything reaches the server.
    let theirs = [research[0].clone(), ("txn-token", task(DEPLOY, 300, &[]))];
    let long = [
        research[0].clone(),
        ("txn-token", task(RESEARCH, 3600, &[])),
    ];
    let amplifying = [
        research[0].clone(),
        (
            "txn-token",
            task(
                RESEARCH,
                300,
                &[
                    ("scope", json!("reports:read deploy:execute")),
                    (
                        "act",
                        json!({"sub": RESEARCH, "scope": "reports:read deploy:execute"}),
                    ),
                ],
            ),
        ),
    ];
    let no_task = [research[0].clone()];
    type Headers<'a> = &'a [(&'a str, String)];
    let expectations: [(Headers, u16, String); 4] = [
        (&theirs, 403, format!("task credential is bound to `{DEPLOY}`, not to the caller `{RESEARCH}`")),
        (&long, 401, "task credential: token lives 3600s (`exp` - `iat`), over the 600s maximum: standing access is refused".to_owned()),
        (&amplifying, 403, format!("the credential exercises `deploy:execute`, which its current actor {RESEARCH} did not hold")),
        (&no_task, 401, "route `mcp` requires a task credential in header `txn-token`".to_owned()),
    ];
    for (headers, status, reason) in expectations {
        let steps = run_client(&envoy, headers, json!([{"op": "initialize"}]), &dir);
        assert_eq!(steps[0]["status"], status, "{steps:?}");
        assert_eq!(reasons(&steps[0]), [reason]);
    }

    // The upstream saw only what was allowed, and never a credential.
    let received = server.received();
    assert!(!received.is_empty());
    for request in &received {
        let headers = &request["headers"];
        for credential in ["authorization", "txn-token", "bridle-approval"] {
            assert!(
                headers.get(credential).is_none(),
                "{credential} reached the upstream: {request}"
            );
        }
        assert_ne!(
            request["body"]["params"]["name"], "deploy_service",
            "a refused call reached the upstream"
        );
        assert_eq!(headers["x-bridle-agent"], RESEARCH);
    }
    let calls = received
        .iter()
        .filter(|r| r["body"]["method"] == "tools/call")
        .count();
    assert_eq!(
        calls, 2,
        "exactly the allowed tool call of each run reached the server"
    );
}

fn tempdir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("bridle-mcp-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
