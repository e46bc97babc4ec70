//! Configuration parsing: arbitrary bytes as the plugin configuration document.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bridle_core::Authorizer::from_json(data, 1);
});
