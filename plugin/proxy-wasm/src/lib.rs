//! Bridle as a proxy-wasm HTTP filter (Envoy, Kong). This adapter only collects the request
//! from the host, hands it to the core, and enforces the decision; all logic is in `bridle-core`.

mod audit;
mod capabilities;
mod control;
mod filter;
mod host;
mod metrics;
mod once;
mod root;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    std::panic::set_hook(Box::new(|info| {
        let _ = proxy_wasm::hostcalls::log(
            proxy_wasm::types::LogLevel::Critical,
            &format!("bridle: panic: {info}"),
        );
    }));
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::BridleRoot::default())
    });
}}
