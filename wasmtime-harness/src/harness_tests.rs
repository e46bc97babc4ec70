//! Tests that compile tiny hand-assembled modules: import checks, start-up failures, and
//! bounds checks on pointers a guest passes to host calls.
mod loading {
    use crate::{Harness, HarnessError, PluginOptions};

    /// A minimal module: `imports` (all `() -> ()` functions), one empty function exported
    /// under each name in `exports`, and an exported memory.
    fn module(imports: &[(&str, &str)], exports: &[&str]) -> Vec<u8> {
        fn name(out: &mut Vec<u8>, s: &str) {
            out.push(u8::try_from(s.len()).unwrap());
            out.extend_from_slice(s.as_bytes());
        }
        fn section(out: &mut Vec<u8>, id: u8, body: &[u8]) {
            out.push(id);
            out.push(u8::try_from(body.len()).unwrap());
            out.extend_from_slice(body);
        }
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        section(&mut wasm, 1, &[1, 0x60, 0, 0]);
        let mut body = vec![u8::try_from(imports.len()).unwrap()];
        for (module, field) in imports {
            name(&mut body, module);
            name(&mut body, field);
            body.extend_from_slice(&[0, 0]);
        }
        section(&mut wasm, 2, &body);
        section(&mut wasm, 3, &[1, 0]);
        section(&mut wasm, 5, &[1, 0, 1]);
        let mut body = vec![u8::try_from(exports.len() + 1).unwrap()];
        let own = u8::try_from(imports.len()).unwrap();
        for export in exports {
            name(&mut body, export);
            body.extend_from_slice(&[0, own]);
        }
        name(&mut body, "memory");
        body.extend_from_slice(&[2, 0]);
        section(&mut wasm, 7, &body);
        section(&mut wasm, 10, &[1, 2, 0, 0x0b]);
        wasm
    }

    #[test]
    fn every_unsupported_import_is_named() {
        let wasm = module(
            &[
                ("env", "proxy_log"),
                ("env", "proxy_nope"),
                ("wasi_snapshot_preview1", "sock_accept"),
            ],
            &["proxy_abi_version_0_2_1"],
        );
        match Harness::from_bytes(&wasm) {
            Err(HarnessError::UnsupportedImports { imports }) => assert_eq!(
                imports,
                vec!["env::proxy_nope", "wasi_snapshot_preview1::sock_accept"]
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_module_without_abi_version_is_refused() {
        let err = Harness::from_bytes(&module(&[], &["_initialize"])).unwrap_err();
        assert!(err.to_string().contains("proxy_abi_version_0_2_1"), "{err}");
        assert!(matches!(
            Harness::from_bytes(b"not wasm"),
            Err(HarnessError::Load(_))
        ));
    }

    #[test]
    fn a_module_without_allocator_cannot_start() {
        let harness = Harness::from_bytes(&module(&[], &["proxy_abi_version_0_2_1"])).unwrap();
        let err = harness.start(PluginOptions::new()).unwrap_err();
        assert!(matches!(err, HarnessError::Abi(_)), "{err}");
    }

    #[test]
    fn wrongly_typed_imports_fail_to_load() {
        // `proxy_log` exists but takes three i32; the module declares it `() -> ()`.
        let wasm = module(&[("env", "proxy_log")], &["proxy_abi_version_0_2_1"]);
        let err = Harness::from_bytes(&wasm).unwrap_err();
        assert!(err.to_string().contains("proxy_log"), "{err}");
    }
}

mod guest_memory {
    use crate::{Harness, HarnessError, PluginOptions};

    fn vec_of(items: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![u8::try_from(items.len()).unwrap()];
        for item in items {
            out.extend_from_slice(item);
        }
        out
    }

    fn section(out: &mut Vec<u8>, id: u8, body: &[u8]) {
        out.push(id);
        out.push(u8::try_from(body.len()).unwrap());
        out.extend_from_slice(body);
    }

    fn name(s: &str) -> Vec<u8> {
        let mut out = vec![u8::try_from(s.len()).unwrap()];
        out.extend_from_slice(s.as_bytes());
        out
    }

    /// `_initialize` calls `proxy_log` with `(level, ptr, len)` for each case and traps
    /// (`unreachable`) unless the status is the expected one.
    fn module(cases: &[(&[u8], &[u8], i32)]) -> Vec<u8> {
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        // 0: (i32 i32 i32) -> i32, 1: (i32) -> i32, 2: () -> ()
        section(
            &mut wasm,
            1,
            &vec_of(&[
                vec![0x60, 3, 0x7f, 0x7f, 0x7f, 1, 0x7f],
                vec![0x60, 1, 0x7f, 1, 0x7f],
                vec![0x60, 0, 0],
            ]),
        );
        let mut import = name("env");
        import.extend(name("proxy_log"));
        import.extend([0, 0]);
        section(&mut wasm, 2, &vec_of(&[import]));
        section(&mut wasm, 3, &[2, 1, 2]);
        section(&mut wasm, 5, &[1, 0, 1]);
        let export = |n: &str, kind: u8, index: u8| {
            let mut e = name(n);
            e.extend([kind, index]);
            e
        };
        section(
            &mut wasm,
            7,
            &vec_of(&[
                export("proxy_abi_version_0_2_1", 0, 2),
                export("malloc", 0, 1),
                export("_initialize", 0, 2),
                export("memory", 2, 0),
            ]),
        );
        // malloc: returns 0 (never called here).
        let malloc = vec![0, 0x41, 0, 0x0b];
        let mut init = vec![0];
        for (ptr, len, expected) in cases {
            init.extend([0x41, 2, 0x41]);
            init.extend_from_slice(ptr);
            init.push(0x41);
            init.extend_from_slice(len);
            init.extend([0x10, 0]);
            init.extend([
                0x41,
                u8::try_from(*expected).unwrap(),
                0x47,
                0x04,
                0x40,
                0x00,
                0x0b,
            ]);
        }
        init.push(0x0b);
        let body = |code: Vec<u8>| {
            let mut b = vec![u8::try_from(code.len()).unwrap()];
            b.extend(code);
            b
        };
        section(&mut wasm, 10, &vec_of(&[body(malloc), body(init)]));
        wasm
    }

    // Signed LEB128 of i32 constants.
    const ZERO: &[u8] = &[0];
    const MINUS_16: &[u8] = &[0x70];
    const SIXTY_FOUR: &[u8] = &[0xc0, 0];
    const PAGE_END: &[u8] = &[0x80, 0x80, 0x04];
    const MINUS_1: &[u8] = &[0x7f];

    #[test]
    fn out_of_bounds_guest_pointers_get_invalid_memory_access() {
        let harness = Harness::from_bytes(&module(&[
            (ZERO, SIXTY_FOUR, 0),
            (PAGE_END, ZERO, 0),
            (PAGE_END, SIXTY_FOUR, 6),
            (MINUS_16, SIXTY_FOUR, 6),
            (ZERO, MINUS_1, 6),
        ]))
        .unwrap();
        let plugin = harness.start(PluginOptions::new()).unwrap();
        assert_eq!(plugin.logs().len(), 2);
    }

    #[test]
    fn an_unexpected_status_traps_as_the_guest_decides() {
        // The control case: expecting Ok for a bad pointer makes the guest trap.
        let harness = Harness::from_bytes(&module(&[(MINUS_16, SIXTY_FOUR, 0)])).unwrap();
        let err = harness.start(PluginOptions::new()).unwrap_err();
        assert!(matches!(err, HarnessError::VmStartFailed { .. }), "{err}");
        assert!(err.to_string().contains("unreachable"), "{err}");
    }
}

/// What the `kong_profile` and `trailers` tests share: the pieces of the modules they assemble
/// (sections of counted items behind LEB128 lengths, imports, exports), and a check.
mod support {
    use crate::HarnessError;

    /// `body` behind its length (unsigned LEB128).
    pub(super) fn with_len(body: Vec<u8>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut len = body.len();
        loop {
            let byte = u8::try_from(len & 0x7f).unwrap();
            len >>= 7;
            if len == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        out.extend(body);
        out
    }

    fn name(s: &str) -> Vec<u8> {
        let mut out = vec![u8::try_from(s.len()).unwrap()];
        out.extend_from_slice(s.as_bytes());
        out
    }

    /// Section `id`: the count of `items`, then the items, behind its length.
    pub(super) fn section(out: &mut Vec<u8>, id: u8, items: &[Vec<u8>]) {
        let mut body = vec![u8::try_from(items.len()).unwrap()];
        for item in items {
            body.extend_from_slice(item);
        }
        out.push(id);
        out.extend(with_len(body));
    }

    /// An import of the function `env.<function>` of type `ty`.
    pub(super) fn import(function: &str, ty: u8) -> Vec<u8> {
        let mut out = name("env");
        out.extend(name(function));
        out.extend([0, ty]);
        out
    }

    /// An export named `n` of `kind` (0 a function, 2 a memory) `index`.
    pub(super) fn export(n: &str, kind: u8, index: u8) -> Vec<u8> {
        let mut e = name(n);
        e.extend([kind, index]);
        e
    }

    /// The exports of a filter: the ABI version marker and `_initialize` (both the empty
    /// function `first`), `malloc` (`first + 1`), `proxy_on_context_create` (`first + 2`),
    /// the `callbacks` (name, function index), and the memory.
    pub(super) fn filter_exports(first: u8, callbacks: &[(&str, u8)]) -> Vec<Vec<u8>> {
        let mut exports = vec![
            export("proxy_abi_version_0_2_1", 0, first),
            export("_initialize", 0, first),
            export("malloc", 0, first + 1),
            export("proxy_on_context_create", 0, first + 2),
        ];
        exports.extend(callbacks.iter().map(|(n, index)| export(n, 0, *index)));
        exports.push(export("memory", 2, 0));
        exports
    }

    /// `err` is a stream held in `phase` that nothing could release.
    pub(super) fn stalled_in(err: &HarnessError, phase: &str) -> bool {
        matches!(err, HarnessError::Stalled { phase: p, .. } if *p == phase)
    }
}

/// Host functions ngx_wasm_module registers without implementing them trap under the Kong
/// profile and answer normally under Envoy.
mod kong_profile {
    use super::support::{export, filter_exports, import, section, stalled_in, with_len};
    use crate::{Harness, HarnessError, HostProfile, PluginOptions};

    /// `_initialize` calls the imported `env.<function>: (i32) -> i32` with 0 and drops the
    /// status.
    fn calling(function: &str) -> Vec<u8> {
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        section(
            &mut wasm,
            1,
            &[vec![0x60, 1, 0x7f, 1, 0x7f], vec![0x60, 0, 0]],
        );
        section(&mut wasm, 2, &[import(function, 0)]);
        section(&mut wasm, 3, &[vec![1], vec![0]]);
        section(&mut wasm, 5, &[vec![0, 1]]);
        section(
            &mut wasm,
            7,
            &[
                export("proxy_abi_version_0_2_1", 0, 1),
                export("_initialize", 0, 1),
                export("malloc", 0, 2),
                export("memory", 2, 0),
            ],
        );
        let init = with_len(vec![0, 0x41, 0, 0x10, 0, 0x1a, 0x0b]);
        let malloc = with_len(vec![0, 0x41, 0, 0x0b]);
        section(&mut wasm, 10, &[init, malloc]);
        wasm
    }

    /// A filter whose `proxy_on_request_headers` returns `request` and
    /// `proxy_on_response_headers` returns `response` (0 Continue, 1 Pause); no other callback.
    fn pausing(request: u8, response: u8) -> Vec<u8> {
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        section(
            &mut wasm,
            1,
            &[
                vec![0x60, 0, 0],
                vec![0x60, 1, 0x7f, 1, 0x7f],
                vec![0x60, 2, 0x7f, 0x7f, 0],
                vec![0x60, 3, 0x7f, 0x7f, 0x7f, 1, 0x7f],
            ],
        );
        section(&mut wasm, 3, &[vec![0], vec![1], vec![2], vec![3], vec![3]]);
        section(&mut wasm, 5, &[vec![0, 1]]);
        let callbacks = [
            ("proxy_on_request_headers", 3),
            ("proxy_on_response_headers", 4),
        ];
        section(&mut wasm, 7, &filter_exports(0, &callbacks));
        section(
            &mut wasm,
            10,
            &[
                with_len(vec![0, 0x0b]),
                with_len(vec![0, 0x41, 0, 0x0b]),
                with_len(vec![0, 0x0b]),
                with_len(vec![0, 0x41, request, 0x0b]),
                with_len(vec![0, 0x41, response, 0x0b]),
            ],
        );
        wasm
    }

    #[test]
    fn a_request_paused_at_its_headers_gets_its_body_only_in_envoy() {
        let request = crate::HttpRequest::post("/").body("hello");
        let harness = Harness::from_bytes(&pausing(1, 0)).unwrap();
        // Envoy (with allow_on_headers_stop_iteration) still delivers the body; the body
        // callback (absent: Continue) lets the request go.
        let mut envoy = harness.start(PluginOptions::new()).unwrap();
        assert!(envoy.request(&request).unwrap().is_forwarded());
        // ngx_wasm_module reads no body while the headers step is held: the request hangs.
        let mut kong = harness
            .start(PluginOptions::new().profile(HostProfile::Kong))
            .unwrap();
        let err = kong.request(&request).unwrap_err();
        assert!(stalled_in(&err, "request"), "{err}");
    }

    #[test]
    fn a_response_cannot_be_held_in_kong() {
        let harness = Harness::from_bytes(&pausing(0, 1)).unwrap();
        let request = crate::HttpRequest::get("/");
        let mut envoy = harness.start(PluginOptions::new()).unwrap();
        let err = envoy.request(&request).unwrap_err();
        assert!(stalled_in(&err, "response"), "{err}");
        let mut kong = harness
            .start(PluginOptions::new().profile(HostProfile::Kong))
            .unwrap();
        assert!(kong.request(&request).unwrap().is_forwarded());
        assert!(kong.log_contains("local response expected but none produced"));
    }

    /// A filter whose `proxy_on_request_headers` dispatches `GET /x` to `up` and pauses;
    /// it never continues the request itself (and has no call-response callback).
    fn dispatching() -> Vec<u8> {
        let pairs: [(&str, &str); 3] = [(":method", "GET"), (":path", "/x"), (":authority", "a")];
        let mut headers = u32::try_from(pairs.len()).unwrap().to_le_bytes().to_vec();
        for (k, v) in pairs {
            headers.extend(u32::try_from(k.len()).unwrap().to_le_bytes());
            headers.extend(u32::try_from(v.len()).unwrap().to_le_bytes());
        }
        for (k, v) in pairs {
            headers.extend(k.as_bytes());
            headers.push(0);
            headers.extend(v.as_bytes());
            headers.push(0);
        }
        let mut data = b"up".to_vec();
        data.resize(16, 0);
        data.extend(&headers);

        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        let mut call_type = vec![0x60, 10];
        call_type.extend([0x7f; 10]);
        call_type.extend([1, 0x7f]);
        section(
            &mut wasm,
            1,
            &[
                vec![0x60, 0, 0],
                vec![0x60, 1, 0x7f, 1, 0x7f],
                vec![0x60, 2, 0x7f, 0x7f, 0],
                vec![0x60, 3, 0x7f, 0x7f, 0x7f, 1, 0x7f],
                call_type,
            ],
        );
        section(&mut wasm, 2, &[import("proxy_http_call", 4)]);
        section(&mut wasm, 3, &[vec![0], vec![1], vec![2], vec![3]]);
        section(&mut wasm, 5, &[vec![0, 1]]);
        let callbacks = [("proxy_on_request_headers", 4)];
        section(&mut wasm, 7, &filter_exports(1, &callbacks));
        let len = u8::try_from(headers.len()).unwrap();
        assert!(len < 64, "one-byte signed LEB128");
        let mut on_headers = vec![0];
        for arg in [0, 2, 16, len, 0, 0, 0, 0] {
            on_headers.extend([0x41, arg]);
        }
        on_headers.extend([0x41, 0xe8, 0x07, 0x41, 8, 0x10, 0, 0x1a, 0x41, 1, 0x0b]);
        section(
            &mut wasm,
            10,
            &[
                with_len(vec![0, 0x0b]),
                with_len(vec![0, 0x41, 0, 0x0b]),
                with_len(vec![0, 0x0b]),
                with_len(on_headers),
            ],
        );
        let mut segment = vec![0, 0x41, 0, 0x0b];
        segment.extend(with_len(data));
        section(&mut wasm, 11, &[segment]);
        wasm
    }

    #[test]
    fn kong_resumes_a_request_once_its_calls_are_answered() {
        let harness = Harness::from_bytes(&dispatching()).unwrap();
        let answer = crate::HttpCallResponse::new(200);
        // Envoy: the filter must continue the request itself.
        let mut envoy = harness.start(PluginOptions::new()).unwrap();
        envoy.set_http_call_responder("up", answer.clone());
        let err = envoy.request(&crate::HttpRequest::get("/")).unwrap_err();
        assert!(matches!(err, HarnessError::Stalled { .. }), "{err}");
        // ngx_wasm_module resumes the filter chain when the last call has been answered.
        let mut kong = harness
            .start(PluginOptions::new().profile(HostProfile::Kong))
            .unwrap();
        kong.set_http_call_responder("up", answer);
        assert!(kong
            .request(&crate::HttpRequest::get("/"))
            .unwrap()
            .is_forwarded());
    }

    #[test]
    fn unimplemented_host_functions_trap_on_kong() {
        for function in [
            "proxy_get_log_level",
            "proxy_grpc_cancel",
            "proxy_grpc_close",
        ] {
            let harness = Harness::from_bytes(&calling(function)).unwrap();
            assert!(harness.start(PluginOptions::new()).is_ok(), "{function}");
            let err = harness
                .start(PluginOptions::new().profile(HostProfile::Kong))
                .unwrap_err();
            assert!(matches!(err, HarnessError::VmStartFailed { .. }), "{err}");
            assert!(
                err.to_string()
                    .contains(&format!("not yet implemented): {function}")),
                "{err}"
            );
        }
    }
}

/// Trailers: Envoy ends the stream with the trailers callback (a buffered body still readable
/// there, and sent on only when it continues); ngx_wasm_module never calls it and has no trailer
/// maps.
mod trailers {
    use super::support::{filter_exports, import, section, stalled_in, with_len};
    use crate::{Action, Harness, HarnessError, HostProfile, HttpRequest, PluginOptions};
    use crate::{HttpOutcome, UpstreamResponse as Upstream};

    /// `i32.const v` (signed LEB128).
    fn c(mut v: i32) -> Vec<u8> {
        let mut out = vec![0x41];
        loop {
            let byte = u8::try_from(v & 0x7f).unwrap();
            v >>= 7;
            let done = (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0);
            out.push(if done { byte } else { byte | 0x80 });
            if done {
                return out;
            }
        }
    }

    fn code(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    // Imported functions, by index.
    const GET_VALUE: u8 = 0;
    const GET_PAIRS: u8 = 1;
    const GET_BUFFER: u8 = 2;
    const SET_BUFFER: u8 = 3;
    const REPLACE_VALUE: u8 = 4;
    // Guest memory: the key `x-checksum`, the value `changed`, the body `filtered`, and where
    // host calls return (pointer, size).
    const KEY: i32 = 16;
    const CHANGED: i32 = 32;
    const FILTERED: i32 = 48;
    const RET_PTR: i32 = 256;
    const RET_SIZE: i32 = 260;
    const REQUEST_TRAILERS: i32 = 1;
    const RESPONSE_TRAILERS: i32 = 3;
    const REQUEST_BODY: i32 = 0;
    const RESPONSE_BODY: i32 = 1;
    const OK: i32 = 0;
    const NOT_FOUND: i32 = 1;
    const BAD_ARGUMENT: i32 = 2;

    /// `proxy_get_header_map_value(map, "x-checksum")`: its status.
    fn value(map: i32) -> Vec<u8> {
        code(&[
            c(map),
            c(KEY),
            c(10),
            c(RET_PTR),
            c(RET_SIZE),
            vec![0x10, GET_VALUE],
        ])
    }

    /// `proxy_get_header_map_pairs(map)`: its status.
    fn pairs(map: i32) -> Vec<u8> {
        code(&[c(map), c(RET_PTR), c(RET_SIZE), vec![0x10, GET_PAIRS]])
    }

    fn get_buffer(buffer: i32) -> Vec<u8> {
        code(&[
            c(buffer),
            c(0),
            c(1_000_000),
            c(RET_PTR),
            c(RET_SIZE),
            vec![0x10, GET_BUFFER],
        ])
    }

    /// `proxy_get_buffer_bytes(buffer, 0, all)`: the size it returned.
    fn buffer_len(buffer: i32) -> Vec<u8> {
        code(&[
            get_buffer(buffer),
            vec![0x1a],
            c(RET_SIZE),
            vec![0x28, 2, 0],
        ])
    }

    /// `proxy_set_buffer_bytes(buffer, 0, all, "filtered")`: its status.
    fn set_body(buffer: i32) -> Vec<u8> {
        code(&[
            c(buffer),
            c(0),
            c(1_000_000),
            c(FILTERED),
            c(8),
            vec![0x10, SET_BUFFER],
        ])
    }

    /// `proxy_replace_header_map_value(map, "x-checksum", "changed")`: its status.
    fn replace(map: i32) -> Vec<u8> {
        code(&[
            c(map),
            c(KEY),
            c(10),
            c(CHANGED),
            c(7),
            vec![0x10, REPLACE_VALUE],
        ])
    }

    /// `0` (Continue) when every probe gave its expected value, non-zero (a stop) otherwise.
    fn expect(checks: &[(Vec<u8>, i32)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (probe, expected)) in checks.iter().enumerate() {
            out.extend(probe);
            out.extend(c(*expected));
            out.push(0x47); // i32.ne
            if i > 0 {
                out.push(0x72); // i32.or
            }
        }
        out
    }

    const UNREACHABLE: [u8; 1] = [0x00];

    /// The callbacks' instructions (each leaves the returned action on the stack); `None`
    /// trailers callbacks are not exported.
    struct Filter {
        request_headers: Vec<u8>,
        request_body: Vec<u8>,
        request_trailers: Option<Vec<u8>>,
        response_headers: Vec<u8>,
        response_body: Vec<u8>,
        response_trailers: Option<Vec<u8>>,
    }

    impl Filter {
        fn module(&self) -> Vec<u8> {
            let mut wasm = b"\0asm\x01\0\0\0".to_vec();
            let i = 0x7f;
            section(
                &mut wasm,
                1,
                &[
                    vec![0x60, 0, 0],
                    vec![0x60, 1, i, 1, i],
                    vec![0x60, 2, i, i, 0],
                    vec![0x60, 3, i, i, i, 1, i],
                    vec![0x60, 2, i, i, 1, i],
                    vec![0x60, 5, i, i, i, i, i, 1, i],
                ],
            );
            section(
                &mut wasm,
                2,
                &[
                    import("proxy_get_header_map_value", 5),
                    import("proxy_get_header_map_pairs", 3),
                    import("proxy_get_buffer_bytes", 5),
                    import("proxy_set_buffer_bytes", 5),
                    import("proxy_replace_header_map_value", 5),
                ],
            );
            // 5 _initialize, 6 malloc, 7 context_create, 8-11 headers/body callbacks,
            // 12-13 trailers callbacks.
            let types = [0u8, 1, 2, 3, 3, 3, 3, 4, 4];
            section(&mut wasm, 3, &types.map(|t| vec![t]));
            section(&mut wasm, 5, &[vec![0, 1]]);
            let mut callbacks = vec![
                ("proxy_on_request_headers", 8),
                ("proxy_on_request_body", 9),
                ("proxy_on_response_headers", 10),
                ("proxy_on_response_body", 11),
            ];
            if self.request_trailers.is_some() {
                callbacks.push(("proxy_on_request_trailers", 12));
            }
            if self.response_trailers.is_some() {
                callbacks.push(("proxy_on_response_trailers", 13));
            }
            section(&mut wasm, 7, &filter_exports(5, &callbacks));
            let body = |instructions: &[u8]| {
                let mut out = vec![0];
                out.extend(instructions);
                out.push(0x0b);
                with_len(out)
            };
            let unused = c(0);
            section(
                &mut wasm,
                10,
                &[
                    body(&[]),
                    body(&c(4096)),
                    body(&[]),
                    body(&self.request_headers),
                    body(&self.request_body),
                    body(&self.response_headers),
                    body(&self.response_body),
                    body(self.request_trailers.as_deref().unwrap_or(&unused)),
                    body(self.response_trailers.as_deref().unwrap_or(&unused)),
                ],
            );
            let segment = |at: i32, bytes: &[u8]| {
                let mut out = vec![0];
                out.extend(c(at));
                out.push(0x0b);
                out.extend(with_len(bytes.to_vec()));
                out
            };
            section(
                &mut wasm,
                11,
                &[
                    segment(KEY, b"x-checksum"),
                    segment(CHANGED, b"changed"),
                    segment(FILTERED, b"filtered"),
                ],
            );
            wasm
        }

        fn harness(&self) -> Harness {
            Harness::from_bytes(&self.module()).unwrap()
        }
    }

    fn with_trailer() -> HttpRequest {
        HttpRequest::post("/")
            .body_chunks([&b"hello "[..], b"world"])
            .trailer("x-checksum", "abc")
    }

    #[test]
    fn envoy_ends_a_buffered_request_in_its_trailers_callback() {
        // Holds the headers and buffers the body; the trailers callback returns the size of
        // the request body it can read.
        let filter = Filter {
            request_headers: c(1),
            request_body: c(1),
            request_trailers: Some(buffer_len(REQUEST_BODY)),
            response_headers: c(0),
            response_body: c(0),
            response_trailers: None,
        };
        let harness = filter.harness();
        let mut plugin = harness.start(PluginOptions::new()).unwrap();
        let mut stream = plugin.stream().unwrap();
        let request = HttpRequest::post("/");
        assert_eq!(
            stream.send_request_headers(&request, false).unwrap(),
            Action::Pause
        );
        assert_eq!(
            stream.send_request_body(b"hello ", false).unwrap(),
            Action::Pause
        );
        assert_eq!(
            stream.send_request_body(b"world", false).unwrap(),
            Action::Pause
        );
        // The whole buffered body (11 bytes) is readable in the trailers callback; its
        // non-zero return holds the request, body and trailers.
        assert_eq!(
            stream
                .send_request_trailers([("x-checksum", "abc")])
                .unwrap(),
            Action::Other(11)
        );
        assert!(stream.is_request_paused() && !stream.is_forwarded());
        assert!(!stream.request_trailers_forwarded());
        assert_eq!(
            stream.request_trailers().header("x-checksum").as_deref(),
            Some("abc")
        );
        assert_eq!(stream.request_body(), b"hello world");
        // The trailers ended the request.
        assert!(matches!(
            stream.send_request_body(b"more", true),
            Err(HarnessError::Usage(_))
        ));
        assert!(matches!(
            stream.send_request_trailers([("a", "b")]),
            Err(HarnessError::Usage(_))
        ));
        stream.finish().unwrap();

        let err = plugin.request(&with_trailer()).unwrap_err();
        assert!(stalled_in(&err, "request"), "{err}");
    }

    #[test]
    fn without_a_trailers_callback_envoy_forwards_the_buffered_request() {
        // A filter that waits for end of stream in its body callback and has no trailers
        // callback: the trailers end the stream and Envoy sends everything on, undecided.
        let filter = Filter {
            request_headers: c(1),
            request_body: c(1),
            request_trailers: None,
            response_headers: c(0),
            response_body: c(0),
            response_trailers: None,
        };
        let harness = filter.harness();
        let mut plugin = harness.start(PluginOptions::new()).unwrap();
        let outcome = plugin.request(&with_trailer()).unwrap();
        assert_eq!(outcome.upstream_body(), Some(&b"hello world"[..]));
        assert_eq!(
            outcome.upstream_trailer("x-checksum").as_deref(),
            Some("abc")
        );
        // Without trailers the same filter holds the request for good.
        let plain = HttpRequest::post("/").body_chunks([&b"hello "[..], b"world"]);
        let err = plugin.request(&plain).unwrap_err();
        assert!(matches!(err, HarnessError::Stalled { .. }), "{err}");
    }

    #[test]
    fn envoy_trailer_maps_and_buffered_bodies() {
        let filter = Filter {
            request_headers: c(1),
            request_body: c(1),
            // Continue only if: the request trailer is readable, the response trailer map
            // does not exist yet, the whole body is buffered, and the trailer can be replaced.
            request_trailers: Some(expect(&[
                (value(REQUEST_TRAILERS), OK),
                (value(RESPONSE_TRAILERS), BAD_ARGUMENT),
                (pairs(RESPONSE_TRAILERS), OK),
                (buffer_len(REQUEST_BODY), 11),
                (replace(REQUEST_TRAILERS), OK),
            ])),
            response_headers: c(0),
            response_body: c(1),
            // Continue only if: the response trailer is readable, the request trailers are
            // gone upstream, and the buffered response body can be replaced.
            response_trailers: Some(expect(&[
                (value(RESPONSE_TRAILERS), OK),
                (value(REQUEST_TRAILERS), BAD_ARGUMENT),
                (get_buffer(RESPONSE_BODY), OK),
                (set_body(RESPONSE_BODY), OK),
            ])),
        };
        let harness = filter.harness();
        let mut plugin = harness.start(PluginOptions::new()).unwrap();
        let request = with_trailer().upstream_response(
            Upstream::new(200)
                .body_chunks([&b"the unfiltered "[..], b"body"])
                .trailer("x-checksum", "up"),
        );
        let outcome = plugin.request(&request).unwrap();
        assert!(outcome.is_forwarded(), "{outcome:?}");
        assert_eq!(outcome.upstream_body(), Some(&b"hello world"[..]));
        assert_eq!(
            outcome.upstream_trailer("x-checksum").as_deref(),
            Some("changed")
        );
        assert_eq!(outcome.body_text(), "filtered");
        assert_eq!(outcome.trailer("x-checksum").as_deref(), Some("up"));

        // A local response has no trailers.
        let local = HttpOutcome::fail_closed();
        assert!(local.trailers().is_empty() && local.upstream_trailers().is_none());
    }

    #[test]
    fn kong_never_calls_the_trailers_callbacks() {
        let filter = Filter {
            request_headers: c(0),
            // ngx_wasm_module has no trailer maps: pairs BadArgument, value NotFound, writes
            // BadArgument. Continue only if so.
            request_body: expect(&[
                (pairs(REQUEST_TRAILERS), BAD_ARGUMENT),
                (value(REQUEST_TRAILERS), NOT_FOUND),
                (replace(REQUEST_TRAILERS), BAD_ARGUMENT),
                (pairs(RESPONSE_TRAILERS), BAD_ARGUMENT),
                (buffer_len(REQUEST_BODY), 11),
            ]),
            request_trailers: Some(UNREACHABLE.to_vec()),
            response_headers: c(0),
            response_body: c(0),
            response_trailers: Some(UNREACHABLE.to_vec()),
        };
        let harness = filter.harness();
        let request = HttpRequest::post("/")
            .body(&b"hello world"[..])
            .trailer("x-checksum", "abc")
            .upstream_response(
                Upstream::new(200)
                    .body_chunks([&b"up"[..], b"stream"])
                    .trailer("x-checksum", "up"),
            );
        let mut kong = harness
            .start(PluginOptions::new().profile(HostProfile::Kong))
            .unwrap();
        let outcome = kong.request(&request).unwrap();
        assert_eq!(outcome.upstream_body(), Some(&b"hello world"[..]));
        // nginx passes no trailers on, in either direction.
        assert!(
            outcome.upstream_trailers().unwrap().is_empty(),
            "{outcome:?}"
        );
        assert!(outcome.trailers().is_empty(), "{outcome:?}");
        assert_eq!(outcome.body_text(), "upstream");
        assert!(kong.log_contains("NYI - get_map bad map_type: 1"));
        assert!(kong.log_contains("NYI - set_map bad map_type: 1"));

        // Envoy calls them (and the body probe stops, Envoy having the maps).
        let mut envoy = harness.start(PluginOptions::new()).unwrap();
        let err = envoy.request(&request).unwrap_err();
        assert!(
            matches!(
                err,
                HarnessError::Trap {
                    callback: "proxy_on_request_trailers",
                    ..
                }
            ),
            "{err}"
        );
    }
}
