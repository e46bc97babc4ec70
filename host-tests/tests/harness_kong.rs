//! Bridle under the harness's Kong profile (ngx_wasm_module's proxy-wasm host, see
//! `wasmtime-harness/src/kong.rs`), and the shipped `kong/` files: every policy case, the
//! declarative configurations through the real `.wasm`, the settings Kong cannot honour, the
//! MCP body and `tools/list` paths, control-plane calls, and the generated `bridle.meta.json`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use host_tests::{cases, demo, jsonschema, ConfigBuilder, TestIssuer};
use serde_json::{json, Value};
use wasmtime_harness::{Harness, HostProfile, HttpOutcome, HttpRequest, Plugin, PluginOptions};

fn harness() -> Harness {
    Harness::load(host_tests::paths::wasm().unwrap()).unwrap()
}

fn kong(config: &Value) -> Plugin {
    harness()
        .start(
            PluginOptions::with_config(config.to_string())
                .profile(HostProfile::Kong)
                .at(SystemTime::now()),
        )
        .unwrap()
}

fn kong_dir() -> PathBuf {
    host_tests::paths::repo_root().join("kong")
}

fn reasons(outcome: &HttpOutcome) -> Vec<String> {
    outcome.try_body_json().unwrap_or_default()["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn policy_cases_under_the_kong_profile() {
    let set = cases::agents().unwrap();
    let mut plugins: BTreeMap<String, Plugin> = set
        .configs
        .iter()
        .map(|(name, config)| (name.clone(), kong(config)))
        .collect();
    let mut failures = Vec::new();
    for case in &set.cases {
        let mut request =
            HttpRequest::new(case.method.as_str(), case.path.as_str()).authority("api.internal");
        for (name, value) in &case.headers {
            request = request.header(name, value);
        }
        if let Some(body) = &case.body {
            request = request.body(body.as_bytes().to_vec());
        }
        let outcome = match plugins.get_mut(&case.config).unwrap().request(&request) {
            Ok(outcome) => outcome,
            Err(err) => {
                failures.push(format!("{}: {err}", case.name));
                continue;
            }
        };
        let expect = &case.expect;
        let body = outcome.try_body_json().unwrap_or_default();
        let ok = if expect.allow {
            outcome.is_forwarded() && outcome.upstream_header("authorization").is_none()
        } else {
            !outcome.is_forwarded()
                && outcome.status() == expect.status()
                && body["error"].as_str() == expect.error()
                && reasons(&outcome) == expect.reasons
        };
        if !ok {
            failures.push(format!(
                "{} ({}): expected {:?}, got {} {}",
                case.name,
                case.description,
                expect,
                outcome.status(),
                outcome.body_text()
            ));
        }
    }
    assert!(set.cases.len() >= 18, "only {} cases", set.cases.len());
    assert!(
        set.cases.iter().any(|c| c.body.is_some()),
        "no MCP case: the body path would go untested"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The Bridle filter configurations of a declarative Kong file: `(route, config)` for every
/// filter chain entry and every plugin entry named `bridle`.
fn bridle_configs(file: &str) -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(kong_dir().join(file)).unwrap();
    let doc: Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(doc["_format_version"], "3.0", "{file}");
    let mut found = Vec::new();
    for service in doc["services"].as_array().unwrap() {
        for route in service["routes"].as_array().unwrap() {
            let name = route["name"].as_str().unwrap().to_owned();
            let chains = route["filter_chains"].as_array().into_iter().flatten();
            let filters = chains.flat_map(|c| c["filters"].as_array().unwrap().iter());
            let plugins = route["plugins"].as_array().into_iter().flatten();
            for entry in filters.chain(plugins) {
                if entry["name"] == "bridle" {
                    found.push((name.clone(), entry["config"].clone()));
                }
            }
        }
    }
    found
}

/// Kong's JSON encoder writes an empty Lua table as `{}`: a shipped configuration must not rely
/// on an empty list.
fn empty_lists(value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Array(items) if items.is_empty() => out.push(at.to_owned()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                empty_lists(item, &format!("{at}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                empty_lists(item, &format!("{at}.{key}"), out);
            }
        }
        _ => {}
    }
}

fn bearer(issuer: &TestIssuer, agent: &str) -> String {
    format!("Bearer {}", issuer.token_for(&demo::agent(agent)).unwrap())
}

fn mcp_call(tool: &str) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
           "params": {"name": tool, "arguments": {"q": "q3"}}})
    .to_string()
    .into_bytes()
}

/// Requests through one shipped configuration, by the route it guards.
fn exercise(route: &str, config: &Value) {
    let issuer = demo::issuer().unwrap();
    let stranger = issuer.impostor().unwrap();
    let mut plugin = kong(config);
    match route {
        "reports" => {
            let ok = plugin
                .request(
                    &HttpRequest::get("/api/reports/q3")
                        .header("authorization", bearer(&issuer, "research-bot")),
                )
                .unwrap();
            assert!(ok.is_forwarded(), "{}", ok.body_text());
            assert_eq!(
                ok.upstream_header("x-bridle-agent").as_deref(),
                Some(demo::agent("research-bot").as_str())
            );
            assert!(ok.upstream_header("authorization").is_none());
            let write = plugin
                .request(
                    &HttpRequest::post("/api/reports/q3")
                        .header("authorization", bearer(&issuer, "research-bot"))
                        .body("{}"),
                )
                .unwrap();
            assert_eq!(write.status(), 403, "{}", write.body_text());
            let other = plugin
                .request(
                    &HttpRequest::get("/api/reports")
                        .header("authorization", bearer(&issuer, "deploy-bot")),
                )
                .unwrap();
            assert_eq!(other.status(), 403, "{}", other.body_text());
        }
        "mcp" => {
            let call = |plugin: &mut Plugin, tool: &str| {
                plugin
                    .request(
                        &HttpRequest::post("/mcp")
                            .header("authorization", bearer(&issuer, "research-bot"))
                            .header("content-type", "application/json")
                            .body(mcp_call(tool)),
                    )
                    .unwrap()
            };
            let read = call(&mut plugin, "search_reports");
            assert!(read.is_forwarded(), "{}", read.body_text());
            assert_eq!(
                read.upstream_body(),
                Some(mcp_call("search_reports").as_slice())
            );
            let deploy = call(&mut plugin, "deploy_service");
            assert_eq!(deploy.status(), 403, "{}", deploy.body_text());
        }
        other => panic!("no requests for route `{other}`: add them"),
    }
    let forged = plugin
        .request(
            &HttpRequest::get("/api/reports")
                .header("authorization", bearer(&stranger, "research-bot")),
        )
        .unwrap();
    assert_eq!(forged.status(), 401, "{}", forged.body_text());
    let anonymous = plugin.request(&HttpRequest::get("/api/reports")).unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[test]
fn shipped_declarative_configs_run_in_the_wasm() {
    for (file, routes) in [
        ("kong.yml", vec!["reports", "mcp"]),
        ("kong-plugins.yml", vec!["reports"]),
    ] {
        let configs = bridle_configs(file);
        let names: Vec<&str> = configs.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(names, routes, "{file}");
        for (route, config) in &configs {
            let mut empty = Vec::new();
            empty_lists(config, "config", &mut empty);
            assert!(empty.is_empty(), "{file}: empty lists at {empty:?}");
            exercise(route, config);
        }
    }
}

#[test]
fn shipped_kong_conf_turns_on_the_filter() {
    let text = std::fs::read_to_string(kong_dir().join("kong.conf")).unwrap();
    let settings: BTreeMap<&str, &str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (key, value) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not a setting: {l}"));
            (key.trim(), value.trim())
        })
        .collect();
    assert_eq!(settings.get("wasm"), Some(&"on"));
    assert!(settings.contains_key("wasm_filters_path"));
    assert!(settings.contains_key("nginx_wasm_shm_kv"));
    let buffers: Vec<usize> = settings["nginx_http_wasm_response_body_buffers"]
        .split_whitespace()
        .map(|n| {
            n.trim_end_matches('k').parse::<usize>().unwrap()
                * if n.ends_with('k') { 1024 } else { 1 }
        })
        .collect();
    assert_eq!(buffers.len(), 2);
    // The harness runs `tools/list` filtering with this much room below.
    assert_eq!(buffers[0] * buffers[1], KONG_CONF_RESPONSE_BUFFERS);
    assert_eq!(
        settings.get("declarative_config"),
        Some(&"/etc/kong/kong.yml")
    );
}

/// `nginx_http_wasm_response_body_buffers` of kong/kong.conf, in bytes.
const KONG_CONF_RESPONSE_BUFFERS: usize = 64 * 16 * 1024;

#[test]
fn every_shipped_kong_file_is_exercised() {
    // Each file here is read by a test in this file; a new file needs a test first.
    let exercised = [
        "README.md",
        "bridle.meta.json",
        "kong-plugins.yml",
        "kong.conf",
        "kong.yml",
    ];
    let mut shipped: Vec<String> = std::fs::read_dir(kong_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    shipped.sort();
    assert_eq!(shipped, exercised);
    let readme = std::fs::read_to_string(kong_dir().join("README.md")).unwrap();
    for file in exercised.iter().filter(|f| **f != "README.md") {
        assert!(
            readme.contains(file),
            "kong/README.md does not mention {file}"
        );
    }
}

const ALLOW_ALL: &str = "package t\nimport rego.v1\ndecision := {\"allow\": true}\n";

fn allow_all(issuer: &TestIssuer) -> ConfigBuilder {
    ConfigBuilder::with_policy(host_tests::config::inline_policy(
        "data.t.decision",
        &[("t.rego", ALLOW_ALL)],
        json!({}),
    ))
    .issuer(issuer)
    .unwrap()
}

#[test]
fn settings_kong_cannot_honour_refuse_requests_with_the_field_named() {
    let issuer = demo::issuer().unwrap();
    let cases = [
        (
            "connection",
            json!({"peer_uri_san": true}),
            "connection.peer_uri_san",
        ),
        ("audit", json!({"filter_state": true}), "audit.filter_state"),
        (
            "identity",
            json!({"host_verification": {
                "payload_header": "x-jwt-payload",
                "proof_property": ["metadata", "filter_metadata", "envoy.filters.http.jwt_authn"]}}),
            "identity.host_verification.proof_property",
        ),
    ];
    let request =
        HttpRequest::get("/api/reports").header("authorization", bearer(&issuer, "research-bot"));
    for (block, value, field) in cases {
        let config = allow_all(&issuer).set(block, value).build();
        let mut plugin = kong(&config);
        let outcome = plugin.request(&request).unwrap();
        assert_eq!(outcome.status(), 503, "{field}: {}", outcome.body_text());
        assert!(!outcome.is_forwarded());
        assert_eq!(outcome.body_json()["error"], "unavailable");
        assert!(
            reasons(&outcome)[0].contains(field),
            "{field}: {:?}",
            reasons(&outcome)
        );
        assert!(plugin.log_contains(field));
        assert_audited(&plugin, &outcome);
        assert!(!plugin.is_failed(), "{field}: the VM trapped");
        assert_eq!(plugin.metric("bridle.decisions.unavailable"), Some(1));

        // The same configuration works in Envoy (the proof property is absent here: 401).
        let mut envoy = harness()
            .start(PluginOptions::with_config(config.to_string()).at(SystemTime::now()))
            .unwrap();
        let outcome = envoy.request(&request).unwrap();
        assert_ne!(outcome.status(), 503, "{field}: {}", outcome.body_text());
    }
    // Without them the same policy forwards on Kong.
    let outcome = kong(&allow_all(&issuer).build()).request(&request).unwrap();
    assert!(outcome.is_forwarded(), "{}", outcome.body_text());
}

/// A refusal the adapter makes itself still has a decision id, in its body and header, and
/// an audit event under that id.
fn assert_audited(plugin: &Plugin, outcome: &HttpOutcome) {
    let id = outcome.body_json()["decision_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!id.is_empty(), "no decision id: {}", outcome.body_text());
    assert_eq!(
        outcome.header("x-bridle-decision-id").as_deref(),
        Some(id.as_str())
    );
    assert!(
        plugin.log_contains(&format!("\"decision_id\":\"{id}\"")),
        "no audit event for {id}"
    );
}

fn mcp_config() -> Value {
    bridle_configs("kong.yml")
        .into_iter()
        .find(|(route, _)| route == "mcp")
        .unwrap()
        .1
}

#[test]
fn mcp_bodies_are_decided_in_the_body_step_on_kong() {
    let issuer = demo::issuer().unwrap();
    let mut plugin = kong(&mcp_config());
    let body = mcp_call("deploy_service");
    let request = HttpRequest::post("/mcp")
        .header("authorization", bearer(&issuer, "research-bot"))
        .header("content-type", "application/json")
        .header("content-length", body.len().to_string());
    let mut stream = plugin.stream().unwrap();
    // A pause here would hang the request in ngx_wasm_module: the headers step goes on, and
    // nothing reaches the upstream before the body step decided.
    let action = stream.send_request_headers(&request, false).unwrap();
    assert_eq!(action, wasmtime_harness::Action::Continue);
    assert!(!stream.is_forwarded());
    stream.send_request_body(&body, true).unwrap();
    let refused = stream.local_response().expect("refused in the body step");
    assert_eq!(refused.status(), 403, "{}", refused.body_text());
    stream.finish().unwrap();

    // No length and chunked: an empty body would skip the body step, so it is refused.
    let chunked = plugin
        .request(
            &HttpRequest::post("/mcp")
                .header("authorization", bearer(&issuer, "research-bot"))
                .header("transfer-encoding", "chunked")
                .body_chunks([mcp_call("search_reports")]),
        )
        .unwrap();
    assert_eq!(chunked.status(), 411, "{}", chunked.body_text());
    assert_eq!(chunked.body_json()["error"], "length_required");
    assert_audited(&plugin, &chunked);

    // Declared empty: decided at once, on the empty body.
    let empty = plugin
        .request(
            &HttpRequest::post("/mcp")
                .header("authorization", bearer(&issuer, "research-bot"))
                .header("content-type", "application/json")
                .header("content-length", "0"),
        )
        .unwrap();
    assert_eq!(empty.status(), 400, "{}", empty.body_text());

    // Declared too long: refused before any body is read.
    let mut config = mcp_config();
    config["mcp"]["max_body_bytes"] = json!(64);
    let mut small = kong(&config);
    let long = small
        .request(
            &HttpRequest::post("/mcp")
                .header("authorization", bearer(&issuer, "research-bot"))
                .body(mcp_call(&"x".repeat(100))),
        )
        .unwrap();
    assert_eq!(long.status(), 413, "{}", long.body_text());
}

fn tools_list(tools: usize) -> Vec<u8> {
    let mut list = vec![
        json!({"name": "search_reports", "description": "search"}),
        json!({"name": "deploy_service", "description": "deploy"}),
    ];
    for i in 0..tools {
        list.push(json!({"name": format!("padding_{i}"), "description": "x".repeat(200)}));
    }
    json!({"jsonrpc": "2.0", "id": 3, "result": {"tools": list}})
        .to_string()
        .into_bytes()
}

/// Sends an allowed `tools/list` and an upstream answer in 4 KiB chunks; returns what the
/// client got.
fn listed(room: usize, upstream: &[u8]) -> Vec<u8> {
    let issuer = demo::issuer().unwrap();
    let mut config = mcp_config();
    config["mcp"]["filter_tools_list"] = json!(true);
    let mut plugin = harness()
        .start(
            PluginOptions::with_config(config.to_string())
                .profile(HostProfile::Kong)
                .response_body_buffers(room)
                .at(SystemTime::now()),
        )
        .unwrap();
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}).to_string();
    let request = HttpRequest::post("/mcp")
        .header("authorization", bearer(&issuer, "research-bot"))
        .header("content-type", "application/json")
        .header("content-length", body.len().to_string());
    let mut stream = plugin.stream().unwrap();
    stream.send_request_headers(&request, false).unwrap();
    stream.send_request_body(body.as_bytes(), true).unwrap();
    assert!(stream.is_forwarded(), "{:?}", stream.local_response());
    stream
        .send_response_headers(200, [("content-type", "application/json")], false)
        .unwrap();
    let chunks: Vec<&[u8]> = upstream.chunks(4096).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        stream
            .send_response_body(chunk, i + 1 == chunks.len())
            .unwrap();
    }
    let got = stream.response_body();
    stream.finish().unwrap();
    got
}

#[test]
fn tools_list_filtering_never_leaks_past_the_response_buffers() {
    // Fits the buffers: filtered to the tools the agent may call.
    let small = tools_list(0);
    let got: Value = serde_json::from_slice(&listed(16 * 1024, &small)).unwrap();
    let names: Vec<&str> = got["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["search_reports"]);

    // Larger than Kong's default 16 KiB: replaced by an error, no tool shown.
    let large = tools_list(200);
    assert!(large.len() > 40 * 1024);
    let got = listed(16 * 1024, &large);
    let text = String::from_utf8_lossy(&got);
    assert!(
        !text.contains("deploy_service") && !text.contains("search_reports"),
        "{text}"
    );
    let error: Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(error["error"]["code"], -32603);

    // With the room kong/kong.conf sets, the same response is filtered.
    let got: Value = serde_json::from_slice(&listed(KONG_CONF_RESPONSE_BUFFERS, &large)).unwrap();
    let tools = got["result"]["tools"].as_array().unwrap();
    assert!(tools.iter().all(|t| t["name"] != "deploy_service"));
    assert!(tools.iter().any(|t| t["name"] == "search_reports"));
}

#[test]
fn control_plane_calls_go_to_a_host_and_failures_fail_closed() {
    let issuer = demo::issuer().unwrap();
    let config = allow_all(&issuer)
        .set(
            "revocation",
            json!({"feed": {"cluster": "control.internal:9000", "path": "/revocations",
                            "poll_seconds": 5, "max_staleness_seconds": 30}}),
        )
        .set(
            "audit",
            json!({"collector": {"cluster": "collector.internal:9001", "path": "/events",
                                 "batch_size": 10, "flush_ms": 1000}}),
        )
        .build();
    let mut plugin = kong(&config);
    let request =
        HttpRequest::get("/api/reports").header("authorization", bearer(&issuer, "research-bot"));

    plugin.tick().unwrap();
    let feed = plugin.pending_http_calls()[0].clone();
    assert_eq!(feed.upstream, "control.internal:9000");
    assert_eq!(feed.header(":method").as_deref(), Some("GET"));
    assert_eq!(feed.header(":path").as_deref(), Some("/revocations"));
    let agents = json!({"version": 1, "agents": [demo::agent("research-bot")]});
    plugin
        .respond_http_call(
            feed.token,
            200,
            [("content-type", "application/json")],
            agents.to_string(),
        )
        .unwrap();
    let revoked = plugin.request(&request).unwrap();
    assert!(!revoked.is_forwarded(), "{}", revoked.body_text());

    // The collector gets the events of the decisions so far.
    plugin.tick().unwrap();
    let export = plugin
        .pending_http_calls()
        .iter()
        .find(|c| c.upstream == "collector.internal:9001")
        .unwrap()
        .clone();
    assert_eq!(export.header(":method").as_deref(), Some("POST"));
    assert!(String::from_utf8_lossy(&export.body).contains("bridle.decision"));
    plugin
        .respond_http_call(export.token, 200, [("x", "y")], "")
        .unwrap();
    assert_eq!(plugin.metric("bridle.audit.exported"), Some(1));

    // The feed host stops answering (a failed call: no headers, `:dispatch_status` only):
    // once the feed is staler than allowed, requests are refused.
    plugin.advance_time(Duration::from_secs(31));
    plugin.tick().unwrap();
    let calls: Vec<u32> = plugin
        .pending_http_calls()
        .iter()
        .map(|c| c.token)
        .collect();
    for token in calls {
        plugin.fail_http_call(token).unwrap();
    }
    assert!(
        plugin.log_contains("revocation feed"),
        "{:?}",
        plugin.logs()
    );
    let stale = plugin.request(&request).unwrap();
    assert_eq!(stale.status(), 503, "{}", stale.body_text());
    assert!(!plugin.is_failed());
}

#[test]
fn kong_never_delivers_queue_ready() {
    let issuer = demo::issuer().unwrap();
    let mut plugin = kong(&allow_all(&issuer).build());
    let err = plugin.deliver_queue_ready().unwrap_err();
    assert!(err.to_string().contains("on_queue_ready"), "{err}");
}

#[test]
fn policy_bundles_are_fetched_from_a_host_and_shared_between_workers() {
    use host_tests::bundle::{BundleKey, BundleSpec};

    let issuer = demo::issuer().unwrap();
    let key = BundleKey::generate("bundle-1");
    let mut config = ConfigBuilder::agents()
        .unwrap()
        .issuer(&issuer)
        .unwrap()
        .environment("prod")
        .set(
            "bundle",
            json!({"cluster": "control.internal:9000", "path": "/bundles/agents.tar.gz",
                   "keys": {"keys": [key.jwk()]}}),
        )
        .build();
    config["policy"]["modules"] = json!([]);
    config["policy"]["data"] = json!({});
    let shared = wasmtime_harness::SharedData::new();
    let worker = |shared: &wasmtime_harness::SharedData| {
        harness()
            .start(
                PluginOptions::with_config(config.to_string())
                    .profile(HostProfile::Kong)
                    .shared_data(shared.clone())
                    .at(SystemTime::now()),
            )
            .unwrap()
    };
    let mut first = worker(&shared);
    let mut second = worker(&shared);
    let request =
        HttpRequest::get("/api/reports").header("authorization", bearer(&issuer, "research-bot"));
    assert_eq!(first.request(&request).unwrap().status(), 503);

    first.tick().unwrap();
    let call = first.pending_http_calls()[0].clone();
    assert_eq!(call.upstream, "control.internal:9000");
    let archive = BundleSpec::agents("k1", None).unwrap().build(&key).unwrap();
    first
        .respond_http_call(call.token, 200, [("etag", "\"k1\"")], archive)
        .unwrap();
    assert!(first.log_contains("policy bundle revision `k1` active"));
    assert!(first.request(&request).unwrap().is_forwarded());

    // The other worker verifies and adopts what the first shared (Kong's shm_kv).
    second.tick().unwrap();
    assert!(second.log_contains("policy bundle revision `k1` active"));
    assert!(second.request(&request).unwrap().is_forwarded());
}

fn committed_schema() -> Value {
    let text = std::fs::read_to_string(kong_dir().join("bridle.meta.json")).unwrap();
    let meta: Value = serde_json::from_str(&text).unwrap();
    meta["config_schema"].clone()
}

#[test]
fn meta_json_is_generated_from_the_configuration_types() {
    let generated = bridle_core::schema::kong_meta_json();
    let path = kong_dir().join("bridle.meta.json");
    if std::env::var_os("BRIDLE_WRITE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "kong/bridle.meta.json differs from the configuration types; regenerate it with \
         `BRIDLE_WRITE_SCHEMA=1 cargo test -p host-tests --test harness_kong meta_json`"
    );
    let schema = committed_schema();
    // Kong validates `config_schema` against the draft 4 metaschema.
    assert_eq!(schema["$schema"], bridle_core::schema::DRAFT_4);
    assert_eq!(jsonschema::lint(&schema), Vec::<String>::new());
    let mut required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["issuers", "policy"]);
    assert_eq!(schema["additionalProperties"], json!(false));
}

/// Every configuration the tests and the shipped files use, by where it comes from.
fn known_good_configs() -> Vec<(String, Value)> {
    let issuer = demo::issuer().unwrap();
    let mut configs = Vec::new();
    for file in ["kong.yml", "kong-plugins.yml"] {
        for (route, config) in bridle_configs(file) {
            configs.push((format!("{file} {route}"), config));
        }
    }
    configs.push(("demo".to_owned(), demo::config(&issuer).unwrap()));
    for (name, config) in cases::agents().unwrap().configs {
        configs.push((format!("policy cases {name}"), config));
    }
    let approver = TestIssuer::from_private_jwk("https://approvals.demo.bridle.dev", &{
        let text = std::fs::read_to_string(host_tests::paths::demo_issuer_key()).unwrap();
        serde_json::from_str::<Value>(&text).unwrap()
    })
    .unwrap()
    .with_profile("approval");
    let tasks = TestIssuer::new("https://txn.demo.bridle.dev", host_tests::Alg::Es256)
        .unwrap()
        .with_profile("txn-token");
    let mut everything = mcp_config();
    everything["mcp"]["filter_tools_list"] = json!(true);
    everything["routes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "admin", "path": "/admin/**", "methods": ["DELETE"],
                     "require_task": true, "action": "execute", "resource": "admin", "dry_run": true}));
    for (key, value) in [
        (
            "identity",
            json!({"header": "x-agent-token", "scheme": "", "forward_credential": false,
            "clock_skew_seconds": 10, "max_token_bytes": 4096, "cache_entries": 0}),
        ),
        ("connection", json!({"peer_uri_san": true})),
        (
            "response",
            json!({"decision_id_header": "x-id", "realm": "agents"}),
        ),
        ("delegation", json!({"max_depth": 2})),
        (
            "revocation",
            json!({"txn": ["t1"], "jti": ["j1"], "agents": ["a1"],
            "feed": {"cluster": "control.internal:9000", "path": "/revocations"}}),
        ),
        (
            "audit",
            json!({"log": false, "filter_state": true, "arguments": "include", "mask": ["password"],
            "collector": {"cluster": "collector.internal:9001", "path": "/events"}}),
        ),
        ("dry_run", json!(true)),
        (
            "task",
            json!({"header": "txn-token", "max_lifetime_seconds": 300, "binding": "sub",
            "forward": false, "issuers": [host_tests::config::issuer_entry(&tasks).unwrap()]}),
        ),
        (
            "approval",
            json!({"header": "x-approval", "max_lifetime_seconds": 120, "issuers": [
            host_tests::config::issuer_entry(&approver).unwrap()]}),
        ),
        (
            "bundle",
            json!({"cluster": "control.internal:9000", "path": "/b.tar.gz", "poll_seconds": 60,
            "timeout_ms": 500, "max_bytes": 1024, "scope": "prod", "keys": {"keys": [issuer.jwk().unwrap()]}}),
        ),
    ] {
        everything[key] = value;
    }
    configs.push(("every block".to_owned(), everything));
    configs
}

#[test]
fn configurations_satisfy_the_schema_and_bad_ones_fail_it_as_bridle_does() {
    let schema = committed_schema();
    for (name, config) in known_good_configs() {
        if let Err(errors) = jsonschema::validate(&schema, &config) {
            panic!("{name}: {errors:#?}");
        }
        let started = harness().start(PluginOptions::with_config(config.to_string()));
        assert!(started.is_ok(), "{name}: {:?}", started.err());
    }
    let good = mcp_config();
    type Edit = fn(&mut Value);
    let broken: [(&str, Edit); 6] = [
        ("misspelt key", |c| {
            c["issuers"][0]["audience"] = json!(["x"])
        }),
        ("unknown top-level block", |c| c["logging"] = json!({})),
        ("wrong type", |c| c["dry_run"] = json!("yes")),
        ("unknown profile", |c| {
            c["issuers"][0]["profile"] = json!("saml")
        }),
        ("missing policy", |c| {
            c.as_object_mut().unwrap().remove("policy");
        }),
        ("negative number", |c| {
            c["mcp"]["max_body_bytes"] = json!(-1)
        }),
    ];
    for (what, edit) in broken {
        let mut config = good.clone();
        edit(&mut config);
        assert!(
            jsonschema::validate(&schema, &config).is_err(),
            "{what}: the schema accepts it"
        );
        assert!(
            harness()
                .start(PluginOptions::with_config(config.to_string()))
                .is_err(),
            "{what}: Bridle accepts it"
        );
    }
}
