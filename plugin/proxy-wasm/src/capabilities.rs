//! Which proxy-wasm host runs the filter, and the settings a host cannot honour.
//!
//! Envoy and Kong's ngx_wasm_module implement the same ABI differently. Where Bridle depends
//! on a difference — holding a request until its body is read, host properties, filter state —
//! it asks the host once which one it is, instead of guessing from the configuration. The
//! host is known only from a request, so a setting Kong cannot honour refuses every request
//! with a reason naming it (503, audited), never lets them through unchecked.

use std::cell::Cell;

use bridle_core::Capabilities;
use proxy_wasm::hostcalls;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// Envoy (proxy-wasm-cpp-host), and any host that behaves like it.
    Envoy,
    /// ngx_wasm_module (Kong Gateway): no request body until the headers step continued, no
    /// filter state, no Envoy connection or metadata attributes.
    Nginx,
}

impl HostKind {
    /// What this host can do for the core (configuration it cannot honour is refused).
    pub fn capabilities(self) -> &'static Capabilities {
        match self {
            HostKind::Envoy => &Capabilities::ENVOY,
            HostKind::Nginx => &Capabilities::KONG,
        }
    }

    /// Asks the host from an HTTP context. `request.is_subrequest` is an ngx_wasm_module
    /// attribute Envoy does not have (Envoy answers `NotFound`).
    fn probe() -> Self {
        match hostcalls::get_property(vec!["request", "is_subrequest"]) {
            Ok(Some(_)) => HostKind::Nginx,
            _ => HostKind::Envoy,
        }
    }
}

thread_local! {
    /// The host kind, learned on the first request; a VM never changes hosts.
    static KIND: Cell<Option<HostKind>> = const { Cell::new(None) };
}

/// The host this filter runs in. Call from an HTTP context only (the probe reads a request
/// attribute).
pub fn host_kind() -> HostKind {
    KIND.with(|kind| {
        if let Some(known) = kind.get() {
            return known;
        }
        let probed = HostKind::probe();
        kind.set(Some(probed));
        probed
    })
}
