//! MCP / JSON-RPC body parsing: arbitrary bytes as a request body; and the first line as a
//! `content-type`, which is accepted only in the forms that read as UTF-8 JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bridle_core::mcp::parse(data);
    let _ = bridle_core::json_strict::parse(data);
    let line = data.split(|b| *b == b'\n').next().unwrap_or_default();
    if bridle_core::media_type::check_json(&[line], &[]).is_ok() {
        let lower = String::from_utf8_lossy(line).to_ascii_lowercase();
        let essence = lower.split(';').next().unwrap_or_default();
        assert_eq!(essence.trim_matches([' ', '\t']), "application/json");
        assert!(lower.matches("charset").count() <= 1);
    }
});
