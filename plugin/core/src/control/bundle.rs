//! The policy bundle's schedule: poll with the last `ETag`, activate what verifies, share it,
//! and retry sooner after a failure. A bundle that fails anywhere leaves the last good policy.

use super::poll::{Poll, SharedSlot};
use super::{Answer, Fetch, Job, Notice, SharedDocuments, Step};
use crate::authorizer::Authorizer;
use crate::config::RawBundle;

const SHARED_KEY: &str = "bridle.bundle";
/// After a failure, try again sooner than the normal poll period, but not in a tight loop.
const RETRY_SECONDS: u64 = 5;

pub struct BundleSchedule {
    poll: Poll,
    max_bytes: usize,
    etag: Option<String>,
    shared: SharedSlot,
    /// When the control plane last confirmed the active bundle (fetched or not modified).
    pub confirmed_at: Option<u64>,
}

impl BundleSchedule {
    pub fn new(source: &RawBundle) -> Self {
        Self {
            poll: Poll::new(
                Job::Bundle,
                (&source.cluster, &source.path, &source.authority),
                source.timeout_ms,
                source.poll_seconds,
            ),
            max_bytes: source.max_bytes,
            etag: None,
            shared: SharedSlot::new(SHARED_KEY.to_owned()),
            confirmed_at: None,
        }
    }

    pub(super) fn is_call(&self, token: u32) -> bool {
        self.poll.is_call(token)
    }

    pub(super) fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Activates a bundle another worker verified and published.
    pub(super) fn adopt_shared(
        &mut self,
        authorizer: &mut Authorizer,
        shared: &dyn SharedDocuments,
        notices: &mut Vec<Notice>,
    ) {
        if let Some((fetched_at, bytes)) = self.shared.unseen(shared) {
            if activate(authorizer, &bytes, fetched_at, notices) {
                self.confirmed_at = Some(fetched_at);
            }
        }
    }

    pub(super) fn poll(&mut self, now: u64) -> Option<Fetch> {
        let etag = self.etag.iter().map(|tag| ("if-none-match", tag.clone()));
        self.poll.due(now, etag.collect())
    }

    pub(super) fn started(&mut self, token: Option<u32>, now: u64, notices: &mut Vec<Notice>) {
        if !self.poll.started(token, notices) {
            self.poll.next = now.saturating_add(RETRY_SECONDS.min(self.poll.period));
        }
    }

    pub(super) fn on_answer(&mut self, answer: Answer, limit: usize, step: Step) {
        let now = step.now;
        let why = match self.poll.answered(&answer, limit) {
            Ok("304") => {
                self.confirmed_at = Some(now);
                return;
            }
            Ok("200") => {
                if activate(step.authorizer, &answer.body, now, step.notices) {
                    self.confirmed_at = Some(now);
                    self.shared.publish(step.shared, now, &answer.body);
                    self.etag = answer.etag;
                }
                // A refused bundle was noticed; the next poll is the normal one.
                return;
            }
            Ok(status) => format!("the cluster answered `{status}`"),
            Err(why) => why,
        };
        step.notices.push(Notice::BundleNotFetched {
            why,
            kept: step.authorizer.policy_revision().to_owned(),
        });
        self.poll.next = now.saturating_add(RETRY_SECONDS);
    }
}

fn activate(
    authorizer: &mut Authorizer,
    bytes: &[u8],
    now: u64,
    notices: &mut Vec<Notice>,
) -> bool {
    let previous = authorizer.policy_revision().to_owned();
    match authorizer.activate_bundle(bytes, now) {
        Ok(revision) => {
            notices.push(Notice::BundleActivated { revision, previous });
            true
        }
        Err(err) => {
            notices.push(Notice::BundleRefused {
                error: err.to_string(),
                kept: previous,
            });
            false
        }
    }
}
