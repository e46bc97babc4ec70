//! Bridle's metrics, as data: every name and kind, and what a decision or a control-plane
//! notice adds to them. A host defines each metric once and applies the [`Update`]s; the
//! names are the same on every host.

use crate::authorizer::Authorizer;
use crate::control::{ControlPlane, Notice};
use crate::decision::{Decision, Outcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One metric. `as usize` indexes [`Metric::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Allow,
    Deny,
    Unauthenticated,
    BadRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    Error,
    Unavailable,
    DryRunForwarded,
    CacheHit,
    CacheMiss,
    BundleActivations,
    BundleFailures,
    KeysUpdates,
    KeysFailures,
    KeysIgnored,
    AuditExported,
    AuditDropped,
    BundleAge,
    FeedAge,
}

impl Metric {
    pub const ALL: [Metric; 20] = [
        Metric::Allow,
        Metric::Deny,
        Metric::Unauthenticated,
        Metric::BadRequest,
        Metric::PayloadTooLarge,
        Metric::UnsupportedMediaType,
        Metric::Error,
        Metric::Unavailable,
        Metric::DryRunForwarded,
        Metric::CacheHit,
        Metric::CacheMiss,
        Metric::BundleActivations,
        Metric::BundleFailures,
        Metric::KeysUpdates,
        Metric::KeysFailures,
        Metric::KeysIgnored,
        Metric::AuditExported,
        Metric::AuditDropped,
        Metric::BundleAge,
        Metric::FeedAge,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Allow => "bridle.decisions.allow",
            Metric::Deny => "bridle.decisions.deny",
            Metric::Unauthenticated => "bridle.decisions.unauthenticated",
            Metric::BadRequest => "bridle.decisions.bad_request",
            Metric::PayloadTooLarge => "bridle.decisions.payload_too_large",
            Metric::UnsupportedMediaType => "bridle.decisions.unsupported_media_type",
            Metric::Error => "bridle.decisions.error",
            Metric::Unavailable => "bridle.decisions.unavailable",
            Metric::DryRunForwarded => "bridle.decisions.dry_run_forwarded",
            Metric::CacheHit => "bridle.token_cache.hit",
            Metric::CacheMiss => "bridle.token_cache.miss",
            Metric::BundleActivations => "bridle.bundle.activations",
            Metric::BundleFailures => "bridle.bundle.failures",
            Metric::KeysUpdates => "bridle.keys.updates",
            Metric::KeysFailures => "bridle.keys.failures",
            Metric::KeysIgnored => "bridle.keys.ignored",
            Metric::AuditExported => "bridle.audit.exported",
            Metric::AuditDropped => "bridle.audit.dropped",
            Metric::BundleAge => "bridle.bundle.age_seconds",
            Metric::FeedAge => "bridle.revocation_feed.age_seconds",
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Metric::AuditExported | Metric::AuditDropped | Metric::BundleAge | Metric::FeedAge => {
                Kind::Gauge
            }
            _ => Kind::Counter,
        }
    }
}

/// A change to one metric: a counter increment or a gauge's new value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    Add(Metric, u64),
    Set(Metric, u64),
}

fn of_outcome(outcome: Outcome) -> Metric {
    match outcome {
        Outcome::Allow => Metric::Allow,
        Outcome::Deny | Outcome::ApprovalRequired => Metric::Deny,
        Outcome::Unauthenticated => Metric::Unauthenticated,
        Outcome::BadRequest | Outcome::LengthRequired => Metric::BadRequest,
        Outcome::PayloadTooLarge => Metric::PayloadTooLarge,
        Outcome::UnsupportedMediaType => Metric::UnsupportedMediaType,
        Outcome::Error => Metric::Error,
        Outcome::Unavailable => Metric::Unavailable,
    }
}

/// What a decision counts: its outcome, the token cache, a refusal a dry run forwarded.
pub fn of_decision(decision: &Decision) -> impl Iterator<Item = Update> {
    let cache = decision.cache_hit.map(|hit| {
        Update::Add(
            if hit {
                Metric::CacheHit
            } else {
                Metric::CacheMiss
            },
            1,
        )
    });
    let dry_run = (decision.dry_run && !decision.is_allowed())
        .then_some(Update::Add(Metric::DryRunForwarded, 1));
    [
        Some(Update::Add(of_outcome(decision.outcome), 1)),
        cache,
        dry_run,
    ]
    .into_iter()
    .flatten()
}

/// What a control-plane notice counts.
pub fn of_notice(notice: &Notice) -> impl Iterator<Item = Update> {
    let mut updates = [None, None];
    if let Some(activated) = notice.bundle_outcome() {
        let metric = if activated {
            Metric::BundleActivations
        } else {
            Metric::BundleFailures
        };
        updates[0] = Some(Update::Add(metric, 1));
    }
    if let Some((updated, ignored)) = notice.key_set_outcome() {
        let metric = if updated {
            Metric::KeysUpdates
        } else {
            Metric::KeysFailures
        };
        updates[0] = Some(Update::Add(metric, 1));
        updates[1] = (ignored > 0).then_some(Update::Add(Metric::KeysIgnored, ignored as u64));
    }
    updates.into_iter().flatten()
}

/// The control plane's gauges at `now` (unix seconds): audit export totals, and the seconds
/// since the bundle was last confirmed and the feed last updated, when known.
pub fn gauges(
    control: &ControlPlane,
    authorizer: &Authorizer,
    now: u64,
) -> impl Iterator<Item = Update> {
    let export = control.export.as_ref().map(|e| (e.exported, e.dropped));
    let feed_age = authorizer
        .revocation_updated_at()
        .map(|at| now.saturating_sub(at));
    [
        export.map(|(exported, _)| Update::Set(Metric::AuditExported, exported)),
        export.map(|(_, dropped)| Update::Set(Metric::AuditDropped, dropped)),
        control
            .bundle_age(now)
            .map(|age| Update::Set(Metric::BundleAge, age)),
        feed_age.map(|age| Update::Set(Metric::FeedAge, age)),
    ]
    .into_iter()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_listed_once_at_its_index() {
        for (index, metric) in Metric::ALL.iter().enumerate() {
            assert_eq!(*metric as usize, index);
            assert!(metric.name().starts_with("bridle."));
        }
        let mut names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Metric::ALL.len());
    }

    #[test]
    fn notices_count_key_sets_and_bundles() {
        let updated = Notice::KeysUpdated {
            issuer: "i".into(),
            kids: "a".into(),
            ignored: vec!["x".into(), "y".into()],
        };
        assert_eq!(
            of_notice(&updated).collect::<Vec<_>>(),
            [
                Update::Add(Metric::KeysUpdates, 1),
                Update::Add(Metric::KeysIgnored, 2)
            ]
        );
        let refused = Notice::BundleRefused {
            error: "e".into(),
            kept: "r1".into(),
        };
        assert_eq!(
            of_notice(&refused).collect::<Vec<_>>(),
            [Update::Add(Metric::BundleFailures, 1)]
        );
    }
}
