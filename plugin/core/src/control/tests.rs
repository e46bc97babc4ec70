#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;

use super::*;

const KEY: &str = r#"{"kty": "EC", "crv": "P-256", "kid": "k1", "x": "iboj7Fmp7I730UeSOpJnfFefoWGOsI9--gYQ4z-Ygu8", "y": "r8g8eR2nXEUKp9xmvagCXuCe5-uHo2sO4ZC1AkBXBRE"}"#;

fn authorizer(extra: serde_json::Value) -> Authorizer {
    let key: serde_json::Value = serde_json::from_str(KEY).unwrap();
    let mut config = json!({
        "issuers": [{"issuer": "https://idp.test", "profile": "oidc", "audiences": ["gw"],
                     "algorithms": ["ES256"], "jwks": {"keys": [key]}}],
        "policy": {"entrypoint": "data.t.decision", "modules": [{"name": "t.rego",
                   "source": "package t\ndecision := {\"allow\": true}"}]},
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    Authorizer::from_json(config.to_string().as_bytes(), 1).unwrap()
}

#[derive(Default)]
struct Shared(HashMap<String, (u64, Vec<u8>)>);

impl SharedDocuments for Shared {
    fn read(&self, key: &str) -> Option<(u64, Vec<u8>)> {
        self.0.get(key).cloned()
    }
    fn publish(&mut self, key: &str, fetched_at: u64, document: &[u8]) {
        self.0
            .insert(key.to_owned(), (fetched_at, document.to_vec()));
    }
}

fn ok(body: &[u8]) -> Answer {
    Answer {
        status: Some("200".to_owned()),
        body: body.to_vec(),
        ..Answer::default()
    }
}

#[test]
fn nothing_configured_asks_for_no_ticks() {
    let mut a = authorizer(json!({}));
    let mut control = ControlPlane::new(&a);
    assert_eq!(control.tick_period(), None);
    assert!(control.tick(&mut a, 100, &mut NotShared).is_empty());
    assert!(!control.record(|| unreachable!("nothing is exported")));
}

#[test]
fn the_feed_is_polled_on_its_schedule_applied_and_shared() {
    let mut a = authorizer(
        json!({"revocation": {"feed": {"cluster": "control", "path": "/rev", "poll_seconds": 10}}}),
    );
    let mut control = ControlPlane::new(&a);
    assert_eq!(control.tick_period(), Some(Duration::from_secs(1)));
    let mut shared = Shared::default();
    let fetches = control.tick(&mut a, 100, &mut shared);
    assert_eq!(fetches.len(), 1);
    assert_eq!(
        (fetches[0].job, fetches[0].method, fetches[0].path.as_str()),
        (Job::Feed, "GET", "/rev")
    );
    // Nothing more while the call is being started or in flight.
    assert!(control.tick(&mut a, 101, &mut shared).is_empty());
    control.started(Job::Feed, Some(7), 100);
    assert_eq!(control.job_of(7), Some(Job::Feed));
    control.on_answer(
        Job::Feed,
        ok(br#"{"version": 3, "jti": ["j1"]}"#),
        &mut a,
        102,
        &mut shared,
    );
    assert_eq!(a.revocation_version(), Some(3));
    assert_eq!(
        shared.read("bridle.revocations").map(|(at, _)| at),
        Some(102)
    );
    assert_eq!(control.take_notices(), [Notice::FeedApplied { version: 3 }]);
    assert!(
        control.tick(&mut a, 109, &mut shared).is_empty(),
        "next poll at 110"
    );
    assert_eq!(control.tick(&mut a, 110, &mut shared).len(), 1);

    // Another worker's newer document is adopted without a fetch.
    let mut b = authorizer(json!({"revocation": {"feed": {"cluster": "control", "path": "/rev"}}}));
    let mut other = ControlPlane::new(&b);
    other.feed.as_mut().unwrap().poll.next = u64::MAX;
    assert!(other.tick(&mut b, 105, &mut shared).is_empty());
    assert_eq!(b.revocation_version(), Some(3));

    // A failed call keeps the version and says so.
    control.started(Job::Feed, Some(8), 110);
    control.on_answer(Job::Feed, Answer::default(), &mut a, 111, &mut shared);
    assert_eq!(
        control.take_notices()[0].to_string(),
        "bridle: revocation feed: no response (reset or timed out); keeping version Some(3)"
    );
}

#[test]
fn a_bundle_call_that_cannot_start_is_retried_soon_and_a_failure_keeps_the_policy() {
    let key: serde_json::Value = serde_json::from_str(KEY).unwrap();
    let mut a = authorizer(
        json!({"bundle": {"cluster": "control", "path": "/b.tar.gz", "poll_seconds": 30, "keys": {"keys": [key]}}}),
    );
    let mut control = ControlPlane::new(&a);
    let mut shared = Shared::default();
    assert_eq!(control.tick(&mut a, 100, &mut shared).len(), 1);
    control.started(Job::Bundle, None, 100);
    assert!(matches!(
        control.take_notices()[..],
        [Notice::CallNotStarted {
            job: Job::Bundle,
            ..
        }]
    ));
    assert!(control.tick(&mut a, 104, &mut shared).is_empty());
    let retry = control.tick(&mut a, 105, &mut shared);
    assert_eq!(retry.len(), 1);
    assert!(retry[0].headers.is_empty(), "no ETag yet");
    control.started(Job::Bundle, Some(3), 105);
    control.on_answer(Job::Bundle, ok(b"not a bundle"), &mut a, 106, &mut shared);
    let notices = control.take_notices();
    assert!(
        matches!(notices[..], [Notice::BundleRefused { .. }]),
        "{notices:?}"
    );
    assert_eq!(notices[0].bundle_outcome(), Some(false));
    assert!(shared.0.is_empty(), "a refused bundle is not shared");
    // An error status: noticed, retried in five seconds.
    assert_eq!(control.tick(&mut a, 136, &mut shared).len(), 1);
    control.started(Job::Bundle, Some(4), 136);
    let answer = Answer {
        status: Some("503".to_owned()),
        ..Answer::default()
    };
    control.on_answer(Job::Bundle, answer, &mut a, 137, &mut shared);
    assert!(control.take_notices()[0]
        .to_string()
        .contains("the cluster answered `503`"));
    assert!(control.tick(&mut a, 141, &mut shared).is_empty());
    assert_eq!(control.tick(&mut a, 142, &mut shared).len(), 1);
    // An answer over the limit is not read.
    control.started(Job::Bundle, Some(5), 142);
    let answer = Answer {
        status: Some("200".to_owned()),
        oversized: Some(9_000_000),
        ..Answer::default()
    };
    control.on_answer(Job::Bundle, answer, &mut a, 143, &mut shared);
    assert!(control.take_notices()[0]
        .to_string()
        .contains("over the limit of 8388608"));
}

#[test]
fn audit_events_leave_in_batches_and_are_dropped_and_counted_when_they_cannot() {
    let mut a = authorizer(
        json!({"audit": {"collector": {"cluster": "audit", "path": "/events", "batch_size": 2, "max_buffered": 3, "flush_ms": 250}}}),
    );
    let mut control = ControlPlane::new(&a);
    assert_eq!(control.tick_period(), Some(Duration::from_millis(250)));
    for n in 0..4 {
        assert!(control.record(|| format!("{{\"n\":{n}}}")));
    }
    let export = control.export.as_ref().unwrap();
    assert_eq!(export.dropped, 1, "the oldest event beyond max_buffered");
    let fetches = control.tick(&mut a, 1, &mut NotShared);
    assert_eq!(fetches.len(), 1);
    assert_eq!(
        fetches[0].body.as_deref(),
        Some(&b"{\"n\":1}\n{\"n\":2}\n"[..])
    );
    assert!(
        control.tick(&mut a, 1, &mut NotShared).is_empty(),
        "one batch in flight"
    );
    control.started(Job::AuditExport, Some(11), 1);
    assert_eq!(control.job_of(11), Some(Job::AuditExport));
    control.on_answer(
        Job::AuditExport,
        Answer {
            status: Some("204".to_owned()),
            ..Answer::default()
        },
        &mut a,
        1,
        &mut NotShared,
    );
    assert_eq!(control.export.as_ref().unwrap().exported, 2);
    assert_eq!(control.tick(&mut a, 2, &mut NotShared).len(), 1);
    control.started(Job::AuditExport, None, 2);
    let export = control.export.as_ref().unwrap();
    assert_eq!((export.exported, export.dropped), (2, 2));
    assert!(matches!(
        control.take_notices()[..],
        [Notice::AuditDropped { count: 1, .. }]
    ));
}
