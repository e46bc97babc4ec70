//! Audit outputs of the proxy-wasm host: the proxy log, and a bounded buffer exported in
//! batches to a collector cluster. When the collector is down, events are dropped and counted;
//! memory stays bounded by `max_buffered`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Duration;

use bridle_core::config::RawCollector;
use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;

use crate::host::log;

pub struct AuditOutputs {
    pub log: bool,
    pub collector: Option<RefCell<AuditBuffer>>,
}

pub struct AuditBuffer {
    settings: RawCollector,
    events: VecDeque<String>,
    /// The export in flight: its call token and how many events it carries.
    in_flight: Option<(u32, usize)>,
    pub dropped: u64,
    pub exported: u64,
}

impl AuditBuffer {
    pub fn new(settings: RawCollector) -> Self {
        Self {
            events: VecDeque::with_capacity(settings.max_buffered.min(1024)),
            settings,
            in_flight: None,
            dropped: 0,
            exported: 0,
        }
    }

    pub fn push(&mut self, event: String) {
        if self.events.len() >= self.settings.max_buffered {
            self.events.pop_front();
            self.dropped += 1;
        }
        self.events.push_back(event);
    }

    /// Sends the next batch unless one is in flight.
    pub fn flush(&mut self) {
        if self.in_flight.is_some() || self.events.is_empty() {
            return;
        }
        let count = self.events.len().min(self.settings.batch_size);
        let mut body = String::new();
        for event in self.events.drain(..count) {
            body.push_str(&event);
            body.push('\n');
        }
        let headers = vec![
            (":method", "POST"),
            (":path", self.settings.path.as_str()),
            (":authority", self.settings.authority.as_str()),
            ("content-type", "application/x-ndjson"),
        ];
        let timeout = Duration::from_millis(self.settings.timeout_ms);
        match hostcalls::dispatch_http_call(
            &self.settings.cluster,
            headers,
            Some(body.as_bytes()),
            vec![],
            timeout,
        ) {
            Ok(token) => self.in_flight = Some((token, count)),
            Err(status) => {
                self.dropped += count as u64;
                log(
                    LogLevel::Warn,
                    &format!(
                        "bridle: audit export to `{}` failed: {status:?}; {count} events dropped",
                        self.settings.cluster
                    ),
                );
            }
        }
    }

    /// Handles the collector's answer; returns false when `token` is not this buffer's call.
    pub fn on_response(&mut self, token: u32, num_headers: usize) -> bool {
        let Some((in_flight, count)) = self.in_flight else {
            return false;
        };
        if in_flight != token {
            return false;
        }
        self.in_flight = None;
        // A failed call (collector down, reset, timeout) has no header map to read.
        let status = if num_headers == 0 {
            "no response".to_owned()
        } else {
            hostcalls::get_map_value(
                proxy_wasm::types::MapType::HttpCallResponseHeaders,
                ":status",
            )
            .ok()
            .flatten()
            .unwrap_or_default()
        };
        if status.starts_with('2') {
            self.exported += count as u64;
        } else {
            self.dropped += count as u64;
            log(
                LogLevel::Warn,
                &format!("bridle: audit collector answered `{status}`; {count} events dropped"),
            );
        }
        true
    }

    pub fn flush_period(&self) -> Duration {
        Duration::from_millis(self.settings.flush_ms)
    }
}
