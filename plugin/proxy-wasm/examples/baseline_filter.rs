//! Not Bridle: the cost of being a Rust proxy-wasm filter at all, for `scripts/bench-envoy.py`.
//! With the configuration `null`, every callback continues and nothing is asked of the host.
//! With `host-calls`, each request makes the host calls Bridle's allow path makes (read the
//! request headers, read the clock twice, bump two counters, remove one request header, set one
//! request header and one response header) and decides nothing. Bridle's cost over these two is
//! its decision.
//!
//! `cargo build --release -p bridle-proxy-wasm --target wasm32-wasip1 --example baseline_filter`

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default)]
struct Root {
    counters: Option<Rc<[u32; 2]>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let mode = self.get_plugin_configuration().unwrap_or_default();
        self.counters = match mode.as_slice() {
            b"null" => None,
            b"host-calls" => {
                let define = |name| hostcalls::define_metric(MetricType::Counter, name).ok();
                match (define("baseline.allowed"), define("baseline.cache_hit")) {
                    (Some(a), Some(b)) => Some(Rc::new([a, b])),
                    _ => return false,
                }
            }
            _ => return false,
        };
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter {
            counters: self.counters.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Filter {
    counters: Option<Rc<[u32; 2]>>,
}

impl Context for Filter {}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(counters) = self.counters.clone() else {
            return Action::Continue;
        };
        let headers = self.get_http_request_headers_bytes();
        let started = self.get_current_time();
        let finished = self.get_current_time();
        for counter in counters.iter() {
            let _ = hostcalls::increment_metric(*counter, 1);
        }
        self.set_http_request_header("authorization", None);
        let id = format!(
            "{}-{:?}",
            headers.len(),
            finished.duration_since(started).ok()
        );
        self.set_http_request_header("x-bridle-decision-id", Some(&id));
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.counters.is_some() {
            self.set_http_response_header("x-bridle-decision-id", Some("baseline"));
        }
        Action::Continue
    }
}
