//! Criterion benchmarks of decisions through the compiled filter, driven by the harness.
//!
//! Inputs (environment):
//! - `BRIDLE_WASM`: the module (default `<workspace>/target/wasm32-wasip1/release/bridle.wasm`);
//! - `BRIDLE_BENCH_CONFIG`: a JSON file with the plugin configuration (required);
//! - `BRIDLE_BENCH_PATH`: the request path (default `/`);
//! - `BRIDLE_BENCH_HEADERS`: request headers, `name: value` one per line (optional);
//! - `BRIDLE_BENCH_TIME`: the plugin's clock in Unix seconds (default: now), so fixed test
//!   tokens stay valid.
//!
//! One plugin (one store, one instance) serves every iteration, as one Envoy worker would;
//! logs are not recorded and the clock stands still, so each iteration does the same work.

use std::path::PathBuf;
use std::process::ExitCode;

use criterion::Criterion;
use wasmtime_harness::{Harness, HttpRequest, Plugin, PluginOptions};

struct Setup {
    wasm: PathBuf,
    config: Vec<u8>,
    path: String,
    headers: Vec<(String, String)>,
    time: Option<u64>,
}

fn setup() -> Result<Setup, String> {
    let wasm = std::env::var_os("BRIDLE_WASM").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/wasm32-wasip1/release/bridle.wasm")
        },
        PathBuf::from,
    );
    if !wasm.is_file() {
        return Err(format!(
            "no module at `{}`: build it (scripts/build-wasm.sh) or set BRIDLE_WASM",
            wasm.display()
        ));
    }
    let config = std::env::var_os("BRIDLE_BENCH_CONFIG")
        .map(PathBuf::from)
        .ok_or("set BRIDLE_BENCH_CONFIG to a JSON file with the plugin configuration")?;
    let config =
        std::fs::read(&config).map_err(|e| format!("cannot read `{}`: {e}", config.display()))?;
    let path = std::env::var("BRIDLE_BENCH_PATH").unwrap_or_else(|_| "/".to_owned());
    let headers = std::env::var("BRIDLE_BENCH_HEADERS")
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            line.split_once(':')
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| format!("BRIDLE_BENCH_HEADERS: `{line}` is not `name: value`"))
        })
        .collect::<Result<_, _>>()?;
    let time = match std::env::var("BRIDLE_BENCH_TIME") {
        Ok(secs) => Some(
            secs.parse()
                .map_err(|_| format!("BRIDLE_BENCH_TIME: `{secs}` is not Unix seconds"))?,
        ),
        Err(_) => None,
    };
    Ok(Setup {
        wasm,
        config,
        path,
        headers,
        time,
    })
}

fn start(setup: &Setup) -> Result<Plugin, String> {
    let harness = Harness::load(&setup.wasm).map_err(|e| e.to_string())?;
    let mut opts = PluginOptions::with_config(setup.config.clone()).record_logs(false);
    if let Some(secs) = setup.time {
        opts = opts.at_unix(secs);
    }
    harness.start(opts).map_err(|e| e.to_string())
}

fn bench_request(c: &mut Criterion, setup: &Setup) -> Result<(), String> {
    let mut plugin = start(setup)?;
    let request = setup
        .headers
        .iter()
        .fold(HttpRequest::get(setup.path.as_str()), |r, (n, v)| {
            r.header(n, v)
        });
    // Fail before measuring rather than benchmark an error path by accident.
    let outcome = plugin.request(&request).map_err(|e| e.to_string())?;
    eprintln!(
        "decision bench: `GET {}` -> {}",
        setup.path,
        outcome.status()
    );
    c.bench_function("request/get", |b| {
        b.iter(|| plugin.request(std::hint::black_box(&request)))
    });
    Ok(())
}

fn main() -> ExitCode {
    let setup = match setup() {
        Ok(setup) => setup,
        Err(message) => {
            eprintln!("decision bench: {message}");
            return ExitCode::from(2);
        }
    };
    let mut criterion = Criterion::default().configure_from_args();
    if let Err(message) = bench_request(&mut criterion, &setup) {
        eprintln!("decision bench: {message}");
        return ExitCode::FAILURE;
    }
    criterion.final_summary();
    ExitCode::SUCCESS
}
