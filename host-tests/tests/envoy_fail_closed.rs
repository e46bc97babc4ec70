//! A filter that traps, in real Envoy with the shipped template's `failure_policy:
//! FAIL_CLOSED`: the caller gets a 5xx and the upstream receives nothing, for the request that
//! crashed the VM and for every request after it.
//!
//! The module is a minimal proxy-wasm filter assembled here byte by byte (no toolchain): it
//! starts and configures fine, and executes `unreachable` in `proxy_on_request_headers`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use host_tests::envoy::TEMPLATE;
use host_tests::{Envoy, EnvoyOptions, Request, Upstream};
use serde_json::json;

const I32: u8 = 0x7f;
const END: u8 = 0x0b;
const UNREACHABLE: u8 = 0x00;
const I32_CONST: u8 = 0x41;

fn name(bytes: &mut Vec<u8>, text: &str) {
    bytes.push(u8::try_from(text.len()).unwrap());
    bytes.extend_from_slice(text.as_bytes());
}

fn section(module: &mut Vec<u8>, id: u8, count: u8, body: &[u8]) {
    let mut content = vec![count];
    content.extend_from_slice(body);
    module.push(id);
    // Every section here is under 128 bytes: a one-byte LEB128 size.
    assert!(content.len() < 128);
    module.push(u8::try_from(content.len()).unwrap());
    module.extend_from_slice(&content);
}

/// A proxy-wasm (ABI 0.2.1) module whose request-headers callback traps.
fn trapping_filter() -> Vec<u8> {
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    // Types: 0 () -> (), 1 (i32) -> i32, 2 (i32, i32) -> i32, 3 (i32, i32) -> (),
    // 4 (i32, i32, i32) -> i32.
    let types = [
        vec![0x60, 0, 0],
        vec![0x60, 1, I32, 1, I32],
        vec![0x60, 2, I32, I32, 1, I32],
        vec![0x60, 2, I32, I32, 0],
        vec![0x60, 3, I32, I32, I32, 1, I32],
    ];
    section(&mut module, 1, 5, &types.concat());
    // Functions: abi version, allocate, vm start, configure, context create, request headers.
    section(&mut module, 3, 6, &[0, 1, 2, 2, 3, 4]);
    // One memory of two pages; `allocate` hands out offset 1024 for the host's copies.
    section(&mut module, 5, 1, &[0x00, 2]);
    let mut exports = Vec::new();
    for (export, kind, index) in [
        ("memory", 2u8, 0u8),
        ("proxy_abi_version_0_2_1", 0, 0),
        ("malloc", 0, 1),
        ("proxy_on_memory_allocate", 0, 1),
        ("proxy_on_vm_start", 0, 2),
        ("proxy_on_configure", 0, 3),
        ("proxy_on_context_create", 0, 4),
        ("proxy_on_request_headers", 0, 5),
    ] {
        name(&mut exports, export);
        exports.extend_from_slice(&[kind, index]);
    }
    // The export section is over 127 bytes: write it with a two-byte size.
    let mut content = vec![8u8];
    content.extend_from_slice(&exports);
    let size = content.len();
    module.push(7);
    module.extend_from_slice(&[
        u8::try_from(size & 0x7f).unwrap() | 0x80,
        u8::try_from(size >> 7).unwrap(),
    ]);
    module.extend_from_slice(&content);
    let bodies: [&[u8]; 6] = [
        &[0, END],
        &[0, I32_CONST, 0x80, 0x08, END],
        &[0, I32_CONST, 1, END],
        &[0, I32_CONST, 1, END],
        &[0, END],
        &[0, UNREACHABLE, END],
    ];
    let mut code = Vec::new();
    for body in bodies {
        code.push(u8::try_from(body.len()).unwrap());
        code.extend_from_slice(body);
    }
    section(&mut module, 10, 6, &code);
    module
}

#[test]
fn a_trapping_filter_forwards_nothing_under_the_shipped_failure_policy() {
    assert!(
        TEMPLATE.contains("failure_policy: FAIL_CLOSED"),
        "the shipped template must fail closed"
    );
    let dir = std::env::temp_dir().join(format!("bridle-trap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wasm = dir.join("trap.wasm");
    std::fs::write(&wasm, trapping_filter()).unwrap();

    let upstream = Upstream::start().unwrap();
    let mut options = EnvoyOptions::new(json!({"any": "configuration"}), upstream.port());
    options.wasm = Some(wasm);
    let envoy = Envoy::start_with(&options).unwrap();
    for attempt in 0..3 {
        let response = envoy
            .send(&Request::get("/api/reports").header("authorization", "Bearer x"))
            .unwrap();
        assert!(
            (500..600).contains(&response.status),
            "attempt {attempt}: {} {}",
            response.status,
            response.text()
        );
    }
    let post =
        Request::post("/mcp").json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
    let response = envoy.send(&post).unwrap();
    assert!((500..600).contains(&response.status), "{}", response.status);
    assert_eq!(upstream.count(), 0, "nothing was forwarded after the trap");
    let log = envoy.log();
    assert!(
        log.contains("proxy_on_request_headers failed: Uncaught RuntimeError: unreachable"),
        "Envoy logged the trap:\n{}",
        envoy.log_tail(40)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
