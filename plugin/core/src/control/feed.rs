//! The revocation feed's schedule: poll every `poll_seconds`, apply what parses, share it.

use super::poll::Poll;
use super::{Answer, Fetch, Job, Notice, SharedDocuments, Step};
use crate::authorizer::Authorizer;
use crate::config::RawFeed;

const SHARED_KEY: &str = "bridle.revocations";
pub(super) const MAX_FEED_BYTES: usize = 16 * 1024 * 1024;

pub struct FeedSchedule {
    pub(super) poll: Poll,
}

impl FeedSchedule {
    pub fn new(source: &RawFeed) -> Self {
        Self {
            poll: Poll::new(
                Job::Feed,
                (&source.cluster, &source.path, &source.authority),
                source.timeout_ms,
                source.poll_seconds,
            ),
        }
    }

    pub(super) fn is_call(&self, token: u32) -> bool {
        self.poll.is_call(token)
    }

    /// Applies what another worker fetched, when it is newer than what this worker has.
    pub(super) fn adopt_shared(
        &mut self,
        authorizer: &mut Authorizer,
        shared: &dyn SharedDocuments,
        notices: &mut Vec<Notice>,
    ) {
        let Some((fetched_at, body)) = shared.read(SHARED_KEY) else {
            return;
        };
        if authorizer
            .revocation_updated_at()
            .is_some_and(|local| local >= fetched_at)
        {
            return;
        }
        if let Err(err) = authorizer.apply_revocation_feed(&body, fetched_at) {
            notices.push(Notice::SharedFeedNotApplied {
                why: err.to_string(),
            });
        }
    }

    pub(super) fn poll(&mut self, now: u64) -> Option<Fetch> {
        self.poll.due(now, Vec::new())
    }

    pub(super) fn started(&mut self, token: Option<u32>, notices: &mut Vec<Notice>) {
        self.poll.started(token, notices);
    }

    pub(super) fn on_answer(&mut self, answer: Answer, limit: usize, step: Step) {
        let why = match self.poll.answered(&answer, limit) {
            Ok("200") => match step
                .authorizer
                .apply_revocation_feed(&answer.body, step.now)
            {
                Ok(version) => {
                    step.shared.publish(SHARED_KEY, step.now, &answer.body);
                    step.notices.push(Notice::FeedApplied { version });
                    return;
                }
                Err(err) => format!("refused: {err}"),
            },
            Ok(status) => format!("answered `{status}`"),
            Err(why) => why,
        };
        step.notices.push(Notice::FeedNotApplied {
            why,
            kept: step.authorizer.revocation_version(),
        });
    }
}
