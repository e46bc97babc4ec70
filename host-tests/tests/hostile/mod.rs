//! The hostile-token corpus (`host-tests/corpus/gen.py`, PyJWT + cryptography): generated at
//! test time with fresh keys, read back, and turned into a Bridle configuration and requests.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use host_tests::{config::inline_policy, paths, ConfigBuilder};
use serde_json::{json, Value};

/// Allows every authenticated request except `/approve`, which needs a human approval.
const POLICY: &str = r#"package corpus
import rego.v1
default decision := {"allow": true}
decision := {"allow": false, "approval_required": true, "reasons": ["corpus: approval needed"]} if input.request.path == "/approve"
"#;

pub struct Case {
    pub name: String,
    pub slot: String,
    pub token: String,
    pub accept: bool,
    pub reason: Option<String>,
}

pub struct Corpus {
    pub doc: Value,
    pub cases: Vec<Case>,
}

/// Runs the generator with the project's virtualenv (installed by `scripts/setup.sh`).
pub fn generate() -> Corpus {
    let root = paths::repo_root();
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh",
        python.display()
    );
    // Tests in one binary generate in parallel: the counter keeps their files apart.
    static GENERATED: AtomicUsize = AtomicUsize::new(0);
    let out: PathBuf = std::env::temp_dir().join(format!(
        "bridle-corpus-{}-{}.json",
        std::process::id(),
        GENERATED.fetch_add(1, Ordering::Relaxed)
    ));
    let status = Command::new(&python)
        .arg(root.join("host-tests/corpus/gen.py"))
        .arg(&out)
        .status()
        .expect("run the corpus generator");
    assert!(status.success(), "corpus generator failed: {status}");
    let text = std::fs::read_to_string(&out).expect("read the corpus");
    let _ = std::fs::remove_file(&out);
    let doc: Value = serde_json::from_str(&text).expect("corpus is JSON");
    let cases = doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().expect("name").to_owned(),
            slot: c["slot"].as_str().expect("slot").to_owned(),
            token: c["token"].as_str().expect("token").to_owned(),
            accept: c["expect"] == "accept",
            reason: c["reason"].as_str().map(str::to_owned),
        })
        .collect();
    Corpus { doc, cases }
}

impl Corpus {
    /// Trusts every corpus issuer: workload, task (`/tasks` requires one) and approval.
    pub fn config(&self) -> Value {
        let mut config = ConfigBuilder::with_policy(inline_policy(
            "data.corpus.decision",
            &[("corpus.rego", POLICY)],
            json!({}),
        ))
        .set("task", json!({"issuers": self.doc["task_issuers"]}))
        .set("approval", json!({"issuers": self.doc["approval_issuers"]}))
        .set("revocation", json!({"jti": self.doc["revoked_jti"]}))
        .set(
            "routes",
            json!([{"name": "tasks", "path": "/tasks", "require_task": true}]),
        )
        .build();
        config["issuers"] = self.doc["issuers"].clone();
        config["identity"]["clock_skew_seconds"] = self.doc["clock_skew_seconds"].clone();
        config
    }

    /// A valid workload token (for the task and approval cases).
    pub fn workload_token(&self) -> &str {
        self.cases
            .iter()
            .find(|c| c.name == "valid/jwt-svid/ES256/k1")
            .map(|c| c.token.as_str())
            .expect("the corpus has a valid ES256 JWT-SVID")
    }

    pub fn host(&self) -> &str {
        self.doc["host"].as_str().expect("host")
    }
}

/// The refusal message fragment each reason class stands for (TokenError and friends).
pub fn reason_fragments(class: &str) -> &'static [&'static str] {
    match class {
        "malformed" => &["token malformed"],
        "signature" => &["signature does not verify", "token malformed"],
        "algorithm" => &["algorithm"],
        "unknown_key" => &["key id"],
        "missing_kid" => &["has no key id"],
        "expired" => &["has expired"],
        "not_yet_valid" => &["not valid yet"],
        "future_iat" => &["issued in the future"],
        "missing_exp" => &["no `exp` claim"],
        "bad_claims" => &["claims malformed"],
        "untrusted_issuer" => &["is not trusted"],
        "wrong_audience" => &["audience is not accepted"],
        "missing_audience" => &["no `aud` claim"],
        "audience" => &["audience is not accepted", "no `aud` claim"],
        "not_spiffe" => &["not a SPIFFE ID"],
        "trust_domain" => &["is outside trust domain"],
        "bad_signature" => &["signature does not verify"],
        "duplicate" => &["duplicate"],
        "too_large" => &["larger than"],
        "critical" => &["critical extensions"],
        "forbidden_header" => &["keys are never taken from a token"],
        "wrong_type" => &["token type"],
        "missing_claim" => &["has no `txn` claim"],
        "standing" => &["standing access"],
        "missing_iat" => &["no `iat` claim"],
        "other_action" => &["approves another action"],
        "approval_jti" => &["jti"],
        "revoked" => &["is revoked"],
        other => panic!("unknown reason class `{other}` in the corpus"),
    }
}

/// Whether `reasons` (a refusal body's array) names the class.
pub fn names_reason(reasons: &Value, class: &str) -> bool {
    let fragments = reason_fragments(class);
    reasons
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|r| fragments.iter().any(|f| r.contains(f)))
}
