//! The control plane, sans IO: when to fetch the policy bundle, the revocation feed and issuers'
//! key sets, when to export audit events, and what to do with each answer. A host adapter only performs the calls
//! it is handed ([`Fetch`]), reports their answers ([`Answer`]), and logs the [`Notice`]s.
//!
//! Every worker fetches for itself; a document one worker verified is also published through
//! the host's [`SharedDocuments`], so the others adopt it on their next tick without a fetch.

mod bundle;
mod export;
mod feed;
mod keys;
mod poll;

use std::time::Duration;

use crate::authorizer::{Authorizer, KeySetId};

pub use bundle::BundleSchedule;
pub use export::AuditExport;
pub use feed::FeedSchedule;
pub use keys::KeySchedule;

/// Which periodic job a call belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Bundle,
    Feed,
    AuditExport,
    Keys(KeySetId),
}

/// A call the host must make: `method path` on `cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub job: Job,
    pub method: &'static str,
    pub cluster: String,
    pub path: String,
    pub authority: String,
    /// Headers besides `:method`, `:path` and `:authority`.
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
}

/// What a call brought back. `status` is `None` when the call failed (reset, timeout).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub status: Option<String>,
    pub etag: Option<String>,
    pub body: Vec<u8>,
    /// Set instead of `body` when the body was over [`ControlPlane::body_limit`].
    pub oversized: Option<usize>,
}

/// Documents a worker shares with the other workers of its host (proxy-wasm shared data), with
/// the time they were fetched.
pub trait SharedDocuments {
    fn read(&self, key: &str) -> Option<(u64, Vec<u8>)>;
    fn publish(&mut self, key: &str, fetched_at: u64, document: &[u8]);
}

/// A host without sharing between workers (or with one worker).
pub struct NotShared;

impl SharedDocuments for NotShared {
    fn read(&self, _key: &str) -> Option<(u64, Vec<u8>)> {
        None
    }
    fn publish(&mut self, _key: &str, _fetched_at: u64, _document: &[u8]) {}
}

/// How loud a [`Notice`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
}

/// Something the host should log (and count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    BundleActivated {
        revision: String,
        previous: String,
    },
    BundleRefused {
        error: String,
        kept: String,
    },
    BundleNotFetched {
        why: String,
        kept: String,
    },
    FeedApplied {
        version: u64,
    },
    FeedNotApplied {
        why: String,
        kept: Option<u64>,
    },
    SharedFeedNotApplied {
        why: String,
    },
    CallNotStarted {
        job: Job,
        cluster: String,
    },
    AuditDropped {
        count: usize,
        why: String,
    },
    /// An issuer's keys were replaced: the key ids now in use, and the keys ignored.
    KeysUpdated {
        issuer: String,
        kids: String,
        ignored: Vec<String>,
    },
    KeysNotUpdated {
        issuer: String,
        why: String,
    },
}

impl Notice {
    pub fn level(&self) -> Level {
        match self {
            Notice::BundleActivated { .. } => Level::Info,
            Notice::KeysUpdated { ignored, .. } if ignored.is_empty() => Level::Info,
            Notice::FeedApplied { .. } | Notice::SharedFeedNotApplied { .. } => Level::Debug,
            _ => Level::Warn,
        }
    }

    /// Whether this notice changes the bundle counters: `Some(true)` an activation,
    /// `Some(false)` a failure.
    pub fn bundle_outcome(&self) -> Option<bool> {
        match self {
            Notice::BundleActivated { .. } => Some(true),
            Notice::BundleRefused { .. } | Notice::BundleNotFetched { .. } => Some(false),
            _ => None,
        }
    }

    /// The audit record of a change to what decides requests (an issuer's keys, the policy
    /// bundle), as one JSON object, for the same trail as decisions; `None` for other notices.
    pub fn audit_record(&self, unix_nanos: u64) -> Option<String> {
        let (kind, outcome, fields): (_, _, [(&str, Field); 2]) = match self {
            Notice::KeysUpdated { issuer, kids, .. } => (
                "bridle.key_set",
                "updated",
                [("issuer", Field::Text(issuer)), ("kids", Field::List(kids))],
            ),
            Notice::KeysNotUpdated { issuer, why } => (
                "bridle.key_set",
                "kept",
                [
                    ("issuer", Field::Text(issuer)),
                    ("reason", Field::Text(why)),
                ],
            ),
            Notice::BundleActivated { revision, previous } => (
                "bridle.bundle",
                "activated",
                [
                    ("revision", Field::Text(revision)),
                    ("previous", Field::Text(previous)),
                ],
            ),
            Notice::BundleRefused { error: why, kept } | Notice::BundleNotFetched { why, kept } => {
                (
                    "bridle.bundle",
                    "kept",
                    [
                        ("revision", Field::Text(kept)),
                        ("reason", Field::Text(why)),
                    ],
                )
            }
            _ => return None,
        };
        let mut record = format!(
            r#"{{"kind":"{kind}","outcome":"{outcome}","time":"{}""#,
            crate::audit::rfc3339(unix_nanos)
        );
        for (name, field) in fields {
            record.push_str(&format!(",\"{name}\":"));
            field.write(&mut record);
        }
        if let Notice::KeysUpdated { ignored, .. } = self {
            record.push_str(",\"ignored\":");
            record.push_str(&serde_json::to_string(ignored).unwrap_or_default());
        }
        record.push('}');
        Some(record)
    }

    /// Whether this notice changes the key set counters: `Some((true, ignored))` an update
    /// that ignored that many keys, `Some((false, 0))` a failure.
    pub fn key_set_outcome(&self) -> Option<(bool, usize)> {
        match self {
            Notice::KeysUpdated { ignored, .. } => Some((true, ignored.len())),
            Notice::KeysNotUpdated { .. } => Some((false, 0)),
            _ => None,
        }
    }
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::BundleActivated { revision, previous } => write!(
                f,
                "bridle: policy bundle revision `{revision}` active (was `{previous}`)"
            ),
            Notice::BundleRefused { error, kept } => write!(
                f,
                "bridle: policy bundle refused: {error}; keeping revision `{kept}`"
            ),
            Notice::BundleNotFetched { why, kept } => write!(
                f,
                "bridle: policy bundle not fetched: {why}; keeping revision `{kept}`"
            ),
            Notice::FeedApplied { version } => {
                write!(f, "bridle: revocation feed version {version} active")
            }
            Notice::FeedNotApplied { why, kept } => write!(
                f,
                "bridle: revocation feed: {why}; keeping version {kept:?}"
            ),
            Notice::SharedFeedNotApplied { why } => {
                write!(f, "bridle: shared revocation document not applied: {why}")
            }
            Notice::CallNotStarted { job, cluster } => {
                let what = match job {
                    Job::Bundle => "policy bundle",
                    Job::Feed => "revocation feed",
                    Job::AuditExport => "audit export",
                    Job::Keys(_) => "key set",
                };
                write!(f, "bridle: {what}: cannot call cluster `{cluster}`")
            }
            Notice::AuditDropped { count, why } => {
                write!(f, "bridle: {why}; {count} events dropped")
            }
            Notice::KeysUpdated {
                issuer,
                kids,
                ignored,
            } => {
                write!(f, "bridle: keys of issuer `{issuer}` now: {kids}")?;
                if !ignored.is_empty() {
                    write!(f, "; {} ignored: {}", ignored.len(), ignored.join("; "))?;
                }
                Ok(())
            }
            Notice::KeysNotUpdated { issuer, why } => write!(
                f,
                "bridle: keys of issuer `{issuer}` not updated: {why}; keeping the last good keys"
            ),
        }
    }
}

/// A value of an audit record: a string, or a list given as `a, b`.
enum Field<'a> {
    Text(&'a str),
    List(&'a str),
}

impl Field<'_> {
    fn write(&self, out: &mut String) {
        let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
        match self {
            Field::Text(text) => out.push_str(&quoted(text)),
            Field::List(list) => {
                let items: Vec<String> = list.split(", ").map(quoted).collect();
                out.push('[');
                out.push_str(&items.join(","));
                out.push(']');
            }
        }
    }
}

/// What handling an answer works on.
struct Step<'a> {
    authorizer: &'a mut Authorizer,
    now: u64,
    shared: &'a mut dyn SharedDocuments,
    notices: &'a mut Vec<Notice>,
}

/// The periodic jobs a configuration asks for, and their state. The default has none.
#[derive(Default)]
pub struct ControlPlane {
    pub bundle: Option<BundleSchedule>,
    pub feed: Option<FeedSchedule>,
    pub export: Option<AuditExport>,
    pub keys: Vec<KeySchedule>,
    notices: Vec<Notice>,
}

impl ControlPlane {
    /// The jobs `authorizer`'s configuration asks for.
    pub fn new(authorizer: &Authorizer) -> Self {
        Self {
            bundle: authorizer.bundle_source().map(BundleSchedule::new),
            feed: authorizer.revocation_feed().map(FeedSchedule::new),
            export: authorizer
                .audit_settings()
                .collector
                .clone()
                .map(AuditExport::new),
            keys: authorizer
                .key_sources()
                .into_iter()
                .map(|(id, issuer, source)| KeySchedule::new(id, issuer, source))
                .collect(),
            notices: Vec::new(),
        }
    }

    /// How often the host must call [`ControlPlane::tick`]; `None`: never. With a bundle or a
    /// feed it is at most a second, so the first fetch happens at once instead of a whole poll
    /// period after start (polls keep their own schedules in seconds).
    pub fn tick_period(&self) -> Option<Duration> {
        let polls = (self.bundle.is_some() || self.feed.is_some() || !self.keys.is_empty())
            .then_some(Duration::from_secs(1));
        let export = self.export.as_ref().map(AuditExport::flush_period);
        polls.into_iter().chain(export).min()
    }

    /// The calls due at `now` (unix seconds), after adopting what other workers shared.
    pub fn tick(
        &mut self,
        authorizer: &mut Authorizer,
        now: u64,
        shared: &mut dyn SharedDocuments,
    ) -> Vec<Fetch> {
        let mut fetches = Vec::new();
        if let Some(export) = &mut self.export {
            fetches.extend(export.flush());
        }
        if let Some(feed) = &mut self.feed {
            feed.adopt_shared(authorizer, shared, &mut self.notices);
            fetches.extend(feed.poll(now));
        }
        if let Some(bundle) = &mut self.bundle {
            bundle.adopt_shared(authorizer, shared, &mut self.notices);
            fetches.extend(bundle.poll(now));
        }
        for keys in &mut self.keys {
            keys.adopt_shared(authorizer, shared, &mut self.notices);
            fetches.extend(keys.poll(authorizer, now));
        }
        fetches
    }

    /// The host started `job`'s call as `token`, or (`None`) could not start it.
    pub fn started(&mut self, job: Job, token: Option<u32>, now: u64) {
        match job {
            Job::Bundle => {
                if let Some(bundle) = &mut self.bundle {
                    bundle.started(token, now, &mut self.notices);
                }
            }
            Job::Feed => {
                if let Some(feed) = &mut self.feed {
                    feed.started(token, &mut self.notices);
                }
            }
            Job::AuditExport => {
                if let Some(export) = &mut self.export {
                    export.started(token, &mut self.notices);
                }
            }
            Job::Keys(id) => {
                if let Some(keys) = self.keys.iter_mut().find(|k| k.id == id) {
                    keys.started(token, now, &mut self.notices);
                }
            }
        }
    }

    /// The job whose call `token` is, if it is one of this control plane's.
    pub fn job_of(&self, token: u32) -> Option<Job> {
        if self.export.as_ref().is_some_and(|e| e.is_call(token)) {
            Some(Job::AuditExport)
        } else if self.bundle.as_ref().is_some_and(|b| b.is_call(token)) {
            Some(Job::Bundle)
        } else if self.feed.as_ref().is_some_and(|f| f.is_call(token)) {
            Some(Job::Feed)
        } else {
            let keys = self.keys.iter().find(|k| k.is_call(token))?;
            Some(Job::Keys(keys.id))
        }
    }

    /// The most body bytes worth reading from `job`'s answer.
    pub fn body_limit(&self, job: Job) -> usize {
        match job {
            Job::Bundle => self.bundle.as_ref().map_or(0, BundleSchedule::max_bytes),
            Job::Feed => feed::MAX_FEED_BYTES,
            // Only the status matters.
            Job::AuditExport => 0,
            Job::Keys(id) => self
                .keys
                .iter()
                .find(|k| k.id == id)
                .map_or(0, KeySchedule::max_bytes),
        }
    }

    /// Handles the answer to `job`'s call at `now`.
    pub fn on_answer(
        &mut self,
        job: Job,
        answer: Answer,
        authorizer: &mut Authorizer,
        now: u64,
        shared: &mut dyn SharedDocuments,
    ) {
        let limit = self.body_limit(job);
        let step = Step {
            authorizer,
            now,
            shared,
            notices: &mut self.notices,
        };
        match job {
            Job::Bundle => {
                if let Some(bundle) = &mut self.bundle {
                    bundle.on_answer(answer, limit, step);
                }
            }
            Job::Feed => {
                if let Some(feed) = &mut self.feed {
                    feed.on_answer(answer, limit, step);
                }
            }
            Job::AuditExport => {
                if let Some(export) = &mut self.export {
                    export.on_answer(&answer, step.notices);
                }
            }
            Job::Keys(id) => {
                if let Some(keys) = self.keys.iter_mut().find(|k| k.id == id) {
                    keys.on_answer(answer, limit, step);
                }
            }
        }
    }

    /// Queues an audit event (JSON) for export; `false` when nothing is exported.
    pub fn record(&mut self, event: impl FnOnce() -> String) -> bool {
        match &mut self.export {
            Some(export) => {
                export.push(event());
                true
            }
            None => false,
        }
    }

    /// What happened since the last call, for the host's log and counters.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Seconds since the bundle was last confirmed by the control plane, when known.
    pub fn bundle_age(&self, now: u64) -> Option<u64> {
        self.bundle
            .as_ref()
            .and_then(|b| b.confirmed_at)
            .map(|at| now.saturating_sub(at))
    }
}

#[cfg(test)]
mod tests;
