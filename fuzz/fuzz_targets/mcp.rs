//! MCP / JSON-RPC body parsing: arbitrary bytes as a request body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bridle_core::mcp::parse(data);
    let _ = bridle_core::json_strict::parse(data);
});
