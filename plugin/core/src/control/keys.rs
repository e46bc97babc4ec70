//! An issuer's remote key set: fetched every `refresh_seconds` with the last `ETag`, sooner
//! when a token names a key id the set lacks (at most once per `min_refresh_seconds`, so a
//! flood of made-up key ids cannot become a flood of fetches), shared with the other workers.
//! A failed fetch or a refused document keeps the last good keys; the verifier fails closed
//! once they are older than `max_staleness_seconds`.

use super::poll::{Poll, SharedSlot};
use super::{Answer, Fetch, Job, Notice, SharedDocuments, Step};
use crate::authorizer::{Authorizer, KeySetId};
use crate::config::RawKeySource;

pub struct KeySchedule {
    pub(super) id: KeySetId,
    issuer: String,
    poll: Poll,
    max_bytes: usize,
    min_refresh: u64,
    etag: Option<String>,
    /// When the last call started: refreshes for unknown key ids wait `min_refresh` after it.
    last_call: Option<u64>,
    shared: SharedSlot,
}

impl KeySchedule {
    pub fn new(id: KeySetId, issuer: &str, source: &RawKeySource) -> Self {
        Self {
            id,
            issuer: issuer.to_owned(),
            poll: Poll::new(
                Job::Keys(id),
                (&source.cluster, &source.path, &source.authority),
                source.timeout_ms,
                source.refresh_seconds,
            ),
            max_bytes: source.max_bytes,
            min_refresh: source.min_refresh_seconds,
            etag: None,
            last_call: None,
            shared: SharedSlot::new(format!("bridle.keys.{}", id.field())),
        }
    }

    pub(super) fn is_call(&self, token: u32) -> bool {
        self.poll.is_call(token)
    }

    pub(super) fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Applies a key set another worker fetched, when it is newer than this worker's.
    pub(super) fn adopt_shared(
        &mut self,
        authorizer: &mut Authorizer,
        shared: &dyn SharedDocuments,
        notices: &mut Vec<Notice>,
    ) {
        if let Some((fetched_at, body)) = self.shared.unseen(shared) {
            self.apply(authorizer, &body, fetched_at, notices);
        }
    }

    pub(super) fn poll(&mut self, authorizer: &Authorizer, now: u64) -> Option<Fetch> {
        let refresh = authorizer.key_refresh_wanted(self.id)
            && self
                .last_call
                .is_none_or(|at| now >= at.saturating_add(self.min_refresh));
        if refresh {
            self.poll.next = now;
        }
        let etag = self.etag.iter().map(|tag| ("if-none-match", tag.clone()));
        let fetch = self.poll.due(now, etag.collect())?;
        self.last_call = Some(now);
        Some(fetch)
    }

    pub(super) fn started(&mut self, token: Option<u32>, now: u64, notices: &mut Vec<Notice>) {
        if !self.poll.started(token, notices) {
            self.poll.next = now.saturating_add(self.min_refresh.min(self.poll.period));
        }
    }

    pub(super) fn on_answer(&mut self, answer: Answer, limit: usize, step: Step) {
        let now = step.now;
        let why = match self.poll.answered(&answer, limit) {
            Ok("304") => {
                step.authorizer.confirm_key_set(self.id, now);
                return;
            }
            Ok("200") => {
                if self.apply(step.authorizer, &answer.body, now, step.notices) {
                    self.shared.publish(step.shared, now, &answer.body);
                    self.etag = answer.etag;
                }
                return;
            }
            Ok(status) => format!("the cluster answered `{status}`"),
            Err(why) => why,
        };
        step.notices.push(Notice::KeysNotUpdated {
            issuer: self.issuer.clone(),
            why,
        });
        self.poll.next = now.saturating_add(self.min_refresh.min(self.poll.period));
    }

    fn apply(
        &self,
        authorizer: &mut Authorizer,
        body: &[u8],
        now: u64,
        notices: &mut Vec<Notice>,
    ) -> bool {
        match authorizer.apply_key_set(self.id, body, now) {
            Ok(None) => true,
            Ok(Some(change)) => {
                notices.push(Notice::KeysUpdated {
                    issuer: self.issuer.clone(),
                    kids: change.kids,
                    ignored: change.ignored,
                });
                true
            }
            Err(err) => {
                notices.push(Notice::KeysNotUpdated {
                    issuer: self.issuer.clone(),
                    why: format!("refused: {err}"),
                });
                false
            }
        }
    }
}
