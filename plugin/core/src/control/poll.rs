//! A periodic `GET` of a control document: where from, how often, and whether a call is out.

use std::time::Duration;

use super::{Answer, Fetch, Job, Notice, SharedDocuments};

/// Where a periodic call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Call {
    Idle,
    /// Handed to the host, its token not yet known.
    Starting,
    InFlight(u32),
}

impl Call {
    /// The call's state once the host reported its token (`None`: it could not start it).
    pub(super) fn started(token: Option<u32>) -> Call {
        token.map_or(Call::Idle, Call::InFlight)
    }
}

pub(super) struct Poll {
    job: Job,
    cluster: String,
    path: String,
    authority: String,
    timeout: Duration,
    pub(super) period: u64,
    call: Call,
    pub(super) next: u64,
}

impl Poll {
    pub(super) fn new(
        job: Job,
        (cluster, path, authority): (&str, &str, &str),
        timeout_ms: u64,
        period: u64,
    ) -> Self {
        Self {
            job,
            cluster: cluster.to_owned(),
            path: path.to_owned(),
            authority: authority.to_owned(),
            timeout: Duration::from_millis(timeout_ms),
            period,
            call: Call::Idle,
            next: 0,
        }
    }

    pub(super) fn is_call(&self, token: u32) -> bool {
        self.call == Call::InFlight(token)
    }

    /// The `GET` due at `now`, if any; the one after it is due a period later.
    pub(super) fn due(&mut self, now: u64, headers: Vec<(&'static str, String)>) -> Option<Fetch> {
        if self.call != Call::Idle || now < self.next {
            return None;
        }
        self.call = Call::Starting;
        self.next = now.saturating_add(self.period);
        Some(Fetch {
            job: self.job,
            method: "GET",
            cluster: self.cluster.clone(),
            path: self.path.clone(),
            authority: self.authority.clone(),
            headers,
            body: None,
            timeout: self.timeout,
        })
    }

    /// Records the host's token for the call; `false`, with a notice, when it could not start.
    pub(super) fn started(&mut self, token: Option<u32>, notices: &mut Vec<Notice>) -> bool {
        self.call = Call::started(token);
        if token.is_none() {
            notices.push(Notice::CallNotStarted {
                job: self.job,
                cluster: self.cluster.clone(),
            });
        }
        token.is_some()
    }

    /// The call is over: its status, or why there is no usable answer.
    pub(super) fn answered<'a>(
        &mut self,
        answer: &'a Answer,
        limit: usize,
    ) -> Result<&'a str, String> {
        self.call = Call::Idle;
        match (&answer.status, answer.oversized) {
            (None, _) => Err("no response (reset or timed out)".to_owned()),
            (Some(_), Some(size)) => {
                Err(format!("body of {size} bytes is over the limit of {limit}"))
            }
            (Some(status), None) => Ok(status),
        }
    }
}

/// One document shared between workers under `key`, and the newest copy this worker has
/// applied or published.
pub(super) struct SharedSlot {
    key: String,
    seen: u64,
}

impl SharedSlot {
    pub(super) fn new(key: String) -> Self {
        Self { key, seen: 0 }
    }

    /// What another worker published since this worker's newest copy: fetched-at and body.
    pub(super) fn unseen(&mut self, shared: &dyn SharedDocuments) -> Option<(u64, Vec<u8>)> {
        let (fetched_at, body) = shared.read(&self.key)?;
        if fetched_at <= self.seen {
            return None;
        }
        self.seen = fetched_at;
        Some((fetched_at, body))
    }

    /// Shares a document this worker fetched at `now` and applied.
    pub(super) fn publish(&mut self, shared: &mut dyn SharedDocuments, now: u64, body: &[u8]) {
        self.seen = now;
        shared.publish(&self.key, now, body);
    }
}
