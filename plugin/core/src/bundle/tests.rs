use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::*;
use serde_json::json;

use super::archive::tests::{gzip, tar};
use super::*;

fn now() -> u64 {
    Clock::now_since_epoch().as_secs()
}

struct Signer {
    key: ES256KeyPair,
    kid: &'static str,
}

impl Signer {
    fn new(kid: &'static str) -> Self {
        Self {
            key: ES256KeyPair::generate().with_key_id(kid),
            kid,
        }
    }

    fn jwk(&self) -> serde_json::Value {
        let point = self.key.public_key().public_key().to_bytes_uncompressed();
        json!({"kty": "EC", "crv": "P-256", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])})
    }

    fn sign(&self, payload: serde_json::Value) -> String {
        let claims = Claims::with_custom_claims(payload, Duration::from_hours(1));
        self.key.sign(claims).unwrap()
    }
}

fn settings(signer: &Signer, scope: Option<&str>) -> BundleSettings {
    let raw: RawBundle = serde_json::from_value(json!({
        "cluster": "control", "path": "/bundle.tar.gz",
        "keys": {"keys": [signer.jwk()]}, "scope": scope, "max_bytes": 1 << 20
    }))
    .unwrap();
    BundleSettings::compile(&raw).unwrap()
}

const POLICY: &[u8] =
    b"package bridle\nimport rego.v1\ndecision := {\"allow\": input.user in data.users}";

fn hashes(files: &[(&str, &[u8])]) -> serde_json::Value {
    let listed: Vec<_> = files
        .iter()
        .map(|(name, bytes)| {
            json!({"name": name, "hash": signature::file_hash(name, bytes).unwrap(), "algorithm": "SHA-256"})
        })
        .collect();
    json!(listed)
}

/// A bundle whose signature covers `signed` and whose archive holds `files`.
fn bundle(signer: &Signer, files: &[(&str, &[u8])], signed: &[(&str, &[u8])]) -> Vec<u8> {
    let token = signer.sign(json!({"files": hashes(signed)}));
    let signatures = serde_json::to_vec(&json!({"signatures": [token]})).unwrap();
    let mut entries: Vec<(&str, &[u8], u8)> = files.iter().map(|(n, b)| (*n, *b, b'0')).collect();
    entries.push((".signatures.json", &signatures, b'0'));
    gzip(&tar(&entries))
}

fn good_files() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("/.manifest", br#"{"revision": "r-42", "roots": [""]}"#),
        ("/policy/main.rego", POLICY),
        ("/data.json", br#"{"users": ["alice"]}"#),
        ("/teams/blue/data.json", b"{\"lead\":  \"bob\"}"),
    ]
}

#[test]
fn a_signed_bundle_opens_with_its_revision_modules_and_data() {
    let signer = Signer::new("bundle-1");
    let files = good_files();
    let opened = settings(&signer, None)
        .open(&bundle(&signer, &files, &files), now())
        .unwrap();
    assert_eq!(opened.revision, "r-42");
    assert_eq!(opened.modules.len(), 1);
    assert_eq!(opened.modules[0].name, "policy/main.rego");
    assert_eq!(
        serde_json::Value::Object(opened.data),
        json!({"users": ["alice"], "teams": {"blue": {"lead": "bob"}}})
    );
}

#[test]
fn every_tampering_is_refused() {
    let signer = Signer::new("bundle-1");
    let other = Signer::new("bundle-1");
    let files = good_files();
    let s = settings(&signer, None);
    let open = |bytes: Vec<u8>| s.open(&bytes, now()).unwrap_err();

    let extra: Vec<(&str, &[u8])> =
        [files.clone(), vec![("/extra.rego", b"package x" as &[u8])]].concat();
    assert_eq!(
        open(bundle(&signer, &extra, &files)),
        BundleError::Unsigned("extra.rego".into())
    );

    let fewer = &files[1..];
    assert_eq!(
        open(bundle(&signer, fewer, &files)),
        BundleError::Missing(".manifest".into())
    );

    let mut changed = files.clone();
    changed[2] = ("/data.json", br#"{"users": ["alice", "mallory"]}"#);
    assert_eq!(
        open(bundle(&signer, &changed, &files)),
        BundleError::HashMismatch("data.json".into())
    );

    // Same key id, another key: the signature does not verify.
    assert!(matches!(
        open(bundle(&other, &files, &files)),
        BundleError::Signature(_)
    ));

    let unknown_kid = Signer::new("someone-else");
    assert!(
        matches!(open(bundle(&unknown_kid, &files, &files)), BundleError::Signature(m) if m.contains("someone-else"))
    );

    let wasm: Vec<(&str, &[u8])> =
        [files.clone(), vec![("/policy.wasm", b"\0asm" as &[u8])]].concat();
    assert_eq!(
        open(bundle(&signer, &wasm, &wasm)),
        BundleError::Unsupported("policy.wasm".into())
    );

    let no_signature = gzip(&tar(&[("data.json", b"{}", b'0')]));
    assert!(matches!(open(no_signature), BundleError::Signature(_)));

    let clash: Vec<(&str, &[u8])> = vec![
        ("/policy/main.rego", POLICY),
        ("/data.json", br#"{"teams": {"blue": 1}}"#),
        ("/teams/data.json", br#"{"blue": 2}"#),
    ];
    assert!(matches!(
        open(bundle(&signer, &clash, &clash)),
        BundleError::Data { .. }
    ));

    assert_eq!(
        open(vec![0u8; (1 << 20) + 1]),
        BundleError::TooLarge(1 << 20)
    );
}

#[test]
fn formatting_of_json_files_is_not_signed_but_their_content_is() {
    let signer = Signer::new("bundle-1");
    let files = good_files();
    let mut reformatted = files.clone();
    reformatted[2] = ("/data.json", b"{\n  \"users\" : [ \"alice\" ]\n}\n");
    assert!(settings(&signer, None)
        .open(&bundle(&signer, &reformatted, &files), now())
        .is_ok());
}

#[test]
fn scope_must_match_exactly() {
    let signer = Signer::new("bundle-1");
    let files = good_files();
    let scoped = |scope: Option<&str>| {
        let mut payload = json!({"files": hashes(&files)});
        if let Some(scope) = scope {
            payload["scope"] = json!(scope);
        }
        let token = signer.sign(payload);
        let signatures = serde_json::to_vec(&json!({"signatures": [token]})).unwrap();
        let mut entries: Vec<(&str, &[u8], u8)> =
            files.iter().map(|(n, b)| (*n, *b, b'0')).collect();
        entries.push((".signatures.json", &signatures, b'0'));
        gzip(&tar(&entries))
    };
    let s = settings(&signer, Some("prod"));
    assert!(s.open(&scoped(Some("prod")), now()).is_ok());
    assert!(s.open(&scoped(Some("dev")), now()).is_err());
    assert!(s.open(&scoped(None), now()).is_err());
    assert!(settings(&signer, None)
        .open(&scoped(Some("prod")), now())
        .is_err());
}

#[test]
fn forged_signature_headers_are_refused() {
    let signer = Signer::new("bundle-1");
    let files = good_files();
    let payload =
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json!({"files": hashes(&files)})).unwrap());
    for header in [
        json!({"alg": "none"}),
        json!({"alg": "HS256", "kid": "bundle-1"}),
        json!({"alg": "ES256", "kid": "bundle-1", "jku": "https://evil.example/jwks"}),
        json!({"alg": "ES256", "kid": "bundle-1", "crit": ["exp"]}),
    ] {
        let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
        let token = format!("{header}.{payload}.AAAA");
        let signatures = serde_json::to_vec(&json!({"signatures": [token]})).unwrap();
        let mut entries: Vec<(&str, &[u8], u8)> =
            files.iter().map(|(n, b)| (*n, *b, b'0')).collect();
        entries.push((".signatures.json", &signatures, b'0'));
        let err = settings(&signer, None)
            .open(&gzip(&tar(&entries)), now())
            .unwrap_err();
        assert!(matches!(err, BundleError::Signature(_)), "{header}: {err}");
    }
}

#[test]
fn bad_bundle_settings_name_the_field() {
    let signer = Signer::new("k");
    for (change, field) in [
        (json!({"cluster": ""}), "bundle.cluster"),
        (json!({"path": "bundle.tar.gz"}), "bundle.path"),
        (json!({"poll_seconds": 0}), "bundle.poll_seconds"),
        (json!({"timeout_ms": 0}), "bundle.timeout_ms"),
        (json!({"max_bytes": 0}), "bundle.max_bytes"),
        (json!({"scope": ""}), "bundle.scope"),
        (json!({"keys": {"keys": []}}), "bundle.keys.keys"),
        (
            json!({"keys": {"keys": [{"kty": "EC", "kid": "k", "crv": "P-256", "x": "AA", "y": "AA"}]}}),
            "bundle.keys.keys[0].x",
        ),
    ] {
        let mut raw =
            json!({"cluster": "control", "path": "/b.tar.gz", "keys": {"keys": [signer.jwk()]}});
        for (k, v) in change.as_object().unwrap() {
            raw[k] = v.clone();
        }
        let raw: RawBundle = serde_json::from_value(raw).unwrap();
        let err = BundleSettings::compile(&raw).err().unwrap();
        assert_eq!(err.field(), field);
    }
}

#[test]
fn a_signature_without_iat_is_refused() {
    let signer = Signer::new("bundle-1");
    let files = good_files();
    let mut claims =
        Claims::with_custom_claims(json!({"files": hashes(&files)}), Duration::from_hours(1));
    claims.issued_at = None;
    let token = signer.key.sign(claims).unwrap();
    let signatures = serde_json::to_vec(&json!({"signatures": [token]})).unwrap();
    let mut entries: Vec<(&str, &[u8], u8)> = files.iter().map(|(n, b)| (*n, *b, b'0')).collect();
    entries.push((".signatures.json", &signatures, b'0'));
    let err = settings(&signer, None)
        .open(&gzip(&tar(&entries)), now())
        .unwrap_err();
    assert!(
        matches!(&err, BundleError::Signature(m) if m.contains("`iat`")),
        "{err}"
    );
    let opened = settings(&signer, None)
        .open(&bundle(&signer, &files, &files), now())
        .unwrap();
    assert!(opened.issued_at.abs_diff(now()) <= 1);
}

#[test]
fn sequence_forms_of_signature_documents_are_refused() {
    let signer = Signer::new("bundle-1");
    let files = good_files();
    let listed: Vec<_> = files
        .iter()
        .map(|(name, bytes)| json!([name, signature::file_hash(name, bytes).unwrap(), "SHA-256"]))
        .collect();
    let archive = |signatures: Vec<u8>| {
        let mut entries: Vec<(&str, &[u8], u8)> =
            files.iter().map(|(n, b)| (*n, *b, b'0')).collect();
        entries.push((".signatures.json", &signatures, b'0'));
        gzip(&tar(&entries))
    };
    let good = signer.sign(json!({"files": hashes(&files)}));
    let array_files = signer.sign(json!({"files": listed}));
    let array_header = {
        let (_, rest) = good.split_once('.').unwrap();
        let header = URL_SAFE_NO_PAD.encode(br#"["ES256","bundle-1"]"#);
        format!("{header}.{rest}")
    };
    let s = settings(&signer, None);
    assert!(s
        .open(
            &archive(serde_json::to_vec(&json!({"signatures": [good.clone()]})).unwrap()),
            now()
        )
        .is_ok());
    for (what, document) in [
        ("array file entries", json!({"signatures": [array_files]})),
        ("array header", json!({"signatures": [array_header]})),
        ("array document", json!([[good]])),
    ] {
        let err = s
            .open(&archive(serde_json::to_vec(&document).unwrap()), now())
            .unwrap_err();
        assert!(
            matches!(&err, BundleError::Signature(m) if m.contains("object") || m.contains("expected a map")),
            "{what}: {err}"
        );
    }
}
