//! The hostile-token corpus through the compiled `.wasm` in the wasmtime harness: every token
//! the independent JOSE stack minted validly is accepted, every attack is refused with the
//! expected status and a reason of its class, and the module never traps.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod hostile;

use serde_json::{json, Value};
use wasmtime_harness::{Harness, HttpOutcome as Outcome, HttpRequest, Plugin, PluginOptions};

fn request(corpus: &hostile::Corpus, case: &hostile::Case) -> HttpRequest {
    let workload = format!("Bearer {}", corpus.workload_token());
    let base = |path: &str| HttpRequest::get(path).authority(corpus.host());
    match case.slot.as_str() {
        "workload" => {
            base("/api/reports").header("authorization", format!("Bearer {}", case.token))
        }
        "task" => base("/tasks")
            .header("authorization", workload)
            .header("txn-token", case.token.clone()),
        "approval" => base(corpus.doc["approve_path"].as_str().unwrap())
            .header("authorization", workload)
            .header("bridle-approval", case.token.clone()),
        other => panic!("unknown slot {other}"),
    }
}

/// What is wrong with the outcome of `case`, if anything.
fn judge(case: &hostile::Case, outcome: &Outcome) -> Option<String> {
    let what = format!(
        "{} ({}): {} {}",
        case.name,
        case.slot,
        outcome.status(),
        outcome.body_text()
    );
    if case.accept {
        return (!outcome.is_forwarded()).then(|| format!("valid token refused: {what}"));
    }
    if outcome.is_forwarded() {
        return Some(format!("ATTACK FORWARDED: {what}"));
    }
    // A bad approval leaves the action unapproved: 403 approval_required with the reason.
    let (status, error) = match case.slot.as_str() {
        "approval" => (403, "approval_required"),
        _ => (401, "unauthenticated"),
    };
    let body: Value = serde_json::from_slice(outcome.body()).unwrap_or(Value::Null);
    if outcome.status() != status || body["error"] != error {
        return Some(format!("expected {status} {error}: {what}"));
    }
    let class = case.reason.as_deref().unwrap_or("(none)");
    (!hostile::names_reason(&body["reasons"], class))
        .then(|| format!("reason is not of class `{class}`: {what}"))
}

fn start(harness: &Harness, config: &Value) -> Plugin {
    harness
        .start(PluginOptions::with_config(config.to_string()).at(std::time::SystemTime::now()))
        .unwrap()
}

#[test]
fn every_attack_in_the_corpus_is_refused_and_every_valid_token_accepted() {
    let corpus = hostile::generate();
    let harness = Harness::load(host_tests::paths::wasm().unwrap()).unwrap();
    let mut plugin = start(&harness, &corpus.config());

    // The approval digest the generator computed independently is the one Bridle asks for.
    let probe = HttpRequest::get(corpus.doc["approve_path"].as_str().unwrap())
        .authority(corpus.host())
        .header(
            "authorization",
            format!("Bearer {}", corpus.workload_token()),
        );
    let asked = plugin.request(&probe).unwrap();
    assert_eq!(asked.status(), 403, "{}", asked.body_text());
    assert_eq!(
        asked.body_json()["action_digest"],
        corpus.doc["action_digest"]
    );

    let mut failures = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    for case in &corpus.cases {
        let outcome = plugin.request(&request(&corpus, case)).unwrap();
        match judge(case, &outcome) {
            Some(failure) => failures.push(failure),
            None if case.accept => accepted += 1,
            None => refused += 1,
        }
        // Each case is judged on its own, not from a cached verdict of an earlier one.
        assert!(!plugin.is_failed(), "the module trapped on {}", case.name);
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n{}",
        failures.len(),
        corpus.cases.len(),
        failures.join("\n")
    );
    assert!(
        accepted >= 30 && refused >= 100,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn the_corpus_is_judged_the_same_from_a_warm_cache() {
    // Second pass on the same worker: verdicts come from the token cache for repeated
    // tokens; no attack may slip through a cache entry of a valid token.
    let corpus = hostile::generate();
    let harness = Harness::load(host_tests::paths::wasm().unwrap()).unwrap();
    let mut plugin = start(&harness, &corpus.config());
    for pass in 0..2 {
        for case in corpus.cases.iter().filter(|c| c.slot == "workload") {
            let outcome = plugin.request(&request(&corpus, case)).unwrap();
            if let Some(failure) = judge(case, &outcome) {
                panic!("pass {pass}: {failure}");
            }
        }
    }
}

#[test]
fn a_weak_rsa_key_in_the_configuration_is_refused_by_the_wasm_naming_the_field() {
    let corpus = hostile::generate();
    let harness = Harness::load(host_tests::paths::wasm().unwrap()).unwrap();
    let mut config = corpus.config();
    config["issuers"] = json!([corpus.doc["weak_rsa_issuer"]]);
    let Err(err) = harness.start(PluginOptions::with_config(config.to_string())) else {
        panic!("a 1024-bit RSA key was accepted");
    };
    assert!(
        err.to_string().contains("issuers[0].jwks.keys[0].n"),
        "{err}"
    );
}

/// Key set documents from the independent stack (`key_sets` in the corpus), served in order by
/// the issuer's endpoint: each replaces the keys (unusable keys ignored and counted, a token of
/// a usable key accepted) or is refused with the last good keys kept.
#[test]
fn fetched_key_sets_are_used_key_by_key_or_refused_whole() {
    let corpus = hostile::generate();
    let harness = Harness::load(host_tests::paths::wasm().unwrap()).unwrap();
    let sets = &corpus.doc["key_sets"];
    let mut config = corpus.config();
    config["issuers"] = json!([sets["issuer"]]);
    let now =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(corpus.doc["now"].as_u64().unwrap());
    let mut plugin = harness
        .start(
            PluginOptions::with_config(config.to_string())
                .at(now)
                .known_clusters(["bridle-control"]),
        )
        .unwrap();
    let send = |plugin: &mut Plugin, token: &str| {
        let request = HttpRequest::get("/api/reports")
            .authority(corpus.host())
            .header("authorization", format!("Bearer {token}"));
        plugin.request(&request).unwrap()
    };
    let metric = |plugin: &Plugin, name: &str| plugin.metric(name).unwrap_or(0);
    let mut failures = Vec::new();
    let mut last_good: Option<String> = None;
    for document in sets["documents"].as_array().unwrap() {
        let name = document["name"].as_str().unwrap();
        plugin.advance_time(std::time::Duration::from_secs(10));
        plugin.tick().unwrap();
        let call = plugin
            .pending_http_calls()
            .iter()
            .find(|c| c.headers.get(":path") == Some(&b"/keys"[..]))
            .cloned()
            .unwrap_or_else(|| panic!("{name}: no key set call"));
        let (updates, refused, ignored) = (
            metric(&plugin, "bridle.keys.updates"),
            metric(&plugin, "bridle.keys.failures"),
            metric(&plugin, "bridle.keys.ignored"),
        );
        let body = document["document"].as_str().unwrap().as_bytes().to_vec();
        plugin
            .respond_http_call(
                call.token,
                200,
                [("content-type", "application/json")],
                body,
            )
            .unwrap();
        assert!(!plugin.is_failed(), "the module trapped on {name}");
        if document["expect"] == "update" {
            let kids: Vec<&str> = document["kids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap())
                .collect();
            let token = document["token"].as_str().unwrap();
            let outcome = send(&mut plugin, token);
            if metric(&plugin, "bridle.keys.updates") != updates + 1
                || metric(&plugin, "bridle.keys.ignored") - ignored
                    != document["ignored"].as_u64().unwrap()
                || !plugin.log_contains(&format!("now: {}", kids.join(", ")))
                || !outcome.is_forwarded()
            {
                failures.push(format!(
                    "{name}: expected keys {kids:?}, {} ignored, its token accepted: {} {}",
                    document["ignored"],
                    outcome.status(),
                    outcome.body_text()
                ));
            }
            last_good = Some(token.to_owned());
        } else {
            let kept = last_good
                .as_deref()
                .map(|token| send(&mut plugin, token).is_forwarded());
            if metric(&plugin, "bridle.keys.failures") != refused + 1 || kept != Some(true) {
                failures.push(format!("{name}: expected refused, last good keys kept"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
