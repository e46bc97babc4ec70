//! Audit export: a bounded buffer sent in batches of JSON lines. When the collector is down,
//! events are dropped and counted; memory stays bounded by `max_buffered`.

use std::collections::VecDeque;
use std::time::Duration;

use super::poll::Call;
use super::{Answer, Fetch, Job, Notice};
use crate::config::RawCollector;

pub struct AuditExport {
    settings: RawCollector,
    events: VecDeque<String>,
    call: Call,
    /// How many events the call in flight carries.
    in_flight: usize,
    pub dropped: u64,
    pub exported: u64,
}

impl AuditExport {
    pub fn new(settings: RawCollector) -> Self {
        Self {
            events: VecDeque::with_capacity(settings.max_buffered.min(1024)),
            settings,
            call: Call::Idle,
            in_flight: 0,
            dropped: 0,
            exported: 0,
        }
    }

    pub(super) fn is_call(&self, token: u32) -> bool {
        self.call == Call::InFlight(token)
    }

    pub(super) fn flush_period(&self) -> Duration {
        Duration::from_millis(self.settings.flush_ms)
    }

    pub(super) fn push(&mut self, event: String) {
        if self.events.len() >= self.settings.max_buffered {
            self.events.pop_front();
            self.dropped += 1;
        }
        self.events.push_back(event);
    }

    /// The next batch, unless one is in flight.
    pub(super) fn flush(&mut self) -> Option<Fetch> {
        if self.call != Call::Idle || self.events.is_empty() {
            return None;
        }
        let count = self.events.len().min(self.settings.batch_size);
        let mut body = String::new();
        for event in self.events.drain(..count) {
            body.push_str(&event);
            body.push('\n');
        }
        self.call = Call::Starting;
        self.in_flight = count;
        Some(Fetch {
            job: Job::AuditExport,
            method: "POST",
            cluster: self.settings.cluster.clone(),
            path: self.settings.path.clone(),
            authority: self.settings.authority.clone(),
            headers: vec![("content-type", "application/x-ndjson".to_owned())],
            body: Some(body.into_bytes()),
            timeout: Duration::from_millis(self.settings.timeout_ms),
        })
    }

    pub(super) fn started(&mut self, token: Option<u32>, notices: &mut Vec<Notice>) {
        self.call = Call::started(token);
        if token.is_none() {
            let why = format!(
                "audit export to `{}` failed: the host refused the call",
                self.settings.cluster
            );
            self.drop_batch(why, notices);
        }
    }

    pub(super) fn on_answer(&mut self, answer: &Answer, notices: &mut Vec<Notice>) {
        self.call = Call::Idle;
        match answer.status.as_deref() {
            Some(status) if status.starts_with('2') => {
                self.exported += self.in_flight as u64;
                self.in_flight = 0;
            }
            status => self.drop_batch(
                format!(
                    "audit collector answered `{}`",
                    status.unwrap_or("no response")
                ),
                notices,
            ),
        }
    }

    fn drop_batch(&mut self, why: String, notices: &mut Vec<Notice>) {
        self.dropped += self.in_flight as u64;
        notices.push(Notice::AuditDropped {
            count: self.in_flight,
            why,
        });
        self.in_flight = 0;
    }
}
