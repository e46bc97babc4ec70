//! `bridle-harness decide`: one request through a compiled proxy-wasm filter, no Envoy.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{json, Map, Value};
use wasmtime_harness::{
    Harness, HarnessError, Headers, HttpOutcome, HttpRequest, LogEntry, PluginOptions,
};

const USAGE: &str =
    "usage: bridle-harness decide --wasm PATH --config CONFIG.json [--method GET] [--path /] \
[--authority HOST] [-H 'name: value']... [--body FILE] [--time UNIX_SECS] [--upstream-status 200]

Loads the module, starts the plugin with CONFIG.json as its configuration, sends the request
and prints the outcome as JSON: {\"outcome\": \"forwarded\" | \"local_response\", \"status\",
\"headers\", \"body\", \"upstream_headers\" (forwarded only), \"details\" (local only), \"logs\"}.
Exit status: 0 when the filter decided, 1 when the plugin refused its configuration or
failed, 2 on bad usage.";

struct Args {
    wasm: PathBuf,
    config: PathBuf,
    method: String,
    path: String,
    authority: String,
    headers: Vec<(String, String)>,
    body: Option<PathBuf>,
    time: Option<u64>,
    upstream_status: u16,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    match argv.next().as_deref() {
        Some("decide") => {}
        Some("-h" | "--help" | "help") => return Err(String::new()),
        Some(other) => return Err(format!("unknown command `{other}`")),
        None => return Err("missing command".to_owned()),
    }
    let mut wasm = None;
    let mut config = None;
    let mut args = Args {
        wasm: PathBuf::new(),
        config: PathBuf::new(),
        method: "GET".to_owned(),
        path: "/".to_owned(),
        authority: "localhost".to_owned(),
        headers: Vec::new(),
        body: None,
        time: None,
        upstream_status: 200,
    };
    while let Some(flag) = argv.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = argv
            .next()
            .ok_or_else(|| format!("`{flag}` needs a value"))?;
        match flag.as_str() {
            "--wasm" => wasm = Some(PathBuf::from(value)),
            "--config" => config = Some(PathBuf::from(value)),
            "--method" => args.method = value,
            "--path" => args.path = value,
            "--authority" => args.authority = value,
            "-H" | "--header" => {
                let (name, val) = value
                    .split_once(':')
                    .ok_or_else(|| format!("header `{value}` is not `name: value`"))?;
                args.headers
                    .push((name.trim().to_owned(), val.trim_start().to_owned()));
            }
            "--body" => args.body = Some(PathBuf::from(value)),
            "--time" => {
                args.time = Some(
                    value
                        .parse()
                        .map_err(|_| format!("`--time` wants Unix seconds, not `{value}`"))?,
                );
            }
            "--upstream-status" => {
                args.upstream_status = value.parse().map_err(|_| {
                    format!("`--upstream-status` wants a status code, not `{value}`")
                })?;
            }
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    args.wasm = wasm.ok_or("`--wasm` is required")?;
    args.config = config.ok_or("`--config` is required")?;
    Ok(args)
}

fn text_or_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

fn headers_json(headers: &Headers) -> Value {
    let mut map = Map::new();
    for (name, value) in headers.iter() {
        let value = Value::String(String::from_utf8_lossy(value).into_owned());
        match map.get_mut(name) {
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
            None => {
                map.insert(name.clone(), value);
            }
        }
    }
    Value::Object(map)
}

fn logs_json(logs: &[LogEntry]) -> Value {
    logs.iter()
        .map(|l| json!({"level": l.level.as_str(), "message": l.message}))
        .collect()
}

fn run(args: Args) -> Result<Value, (u8, String)> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|e| (2, format!("cannot read `{}`: {e}", path.display())))
    };
    let config = read(&args.config)?;
    let mut request = HttpRequest::new(args.method, args.path).authority(args.authority);
    for (name, value) in &args.headers {
        request = request.header(name, value);
    }
    if let Some(body) = &args.body {
        request = request.body(read(body)?);
    }
    request.upstream_response.status = args.upstream_status;

    let harness = Harness::load(&args.wasm).map_err(|e| (1, e.to_string()))?;
    let mut opts = PluginOptions::with_config(config).log_level(wasmtime_harness::LogLevel::Debug);
    if let Some(secs) = args.time {
        opts = opts.at_unix(secs);
    }
    let mut plugin = harness.start(opts).map_err(|e| match &e {
        HarnessError::ConfigureRejected { logs, .. } | HarnessError::VmStartFailed { logs, .. } => {
            let logs: Vec<String> = logs.iter().map(ToString::to_string).collect();
            (1, format!("{e}\nplugin logs:\n  {}", logs.join("\n  ")))
        }
        _ => (1, e.to_string()),
    })?;
    plugin.take_logs();
    let outcome = match plugin.request(&request) {
        Ok(outcome) => outcome,
        Err(e) if e.is_fail_closed() => {
            eprintln!("bridle-harness: {e}; Envoy (fail closed) would answer 503");
            HttpOutcome::fail_closed()
        }
        Err(e) => return Err((1, e.to_string())),
    };
    let logs = logs_json(plugin.logs());
    Ok(match &outcome {
        HttpOutcome::Forwarded {
            request_headers, ..
        } => json!({
            "outcome": "forwarded",
            "status": outcome.status(),
            "headers": headers_json(outcome.headers()),
            "body": text_or_json(outcome.body()),
            "upstream_headers": headers_json(request_headers),
            "logs": logs,
        }),
        HttpOutcome::LocalResponse { details, .. } => json!({
            "outcome": "local_response",
            "status": outcome.status(),
            "headers": headers_json(outcome.headers()),
            "body": text_or_json(outcome.body()),
            "details": details,
            "logs": logs,
        }),
    })
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("bridle-harness: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(value) => {
            match serde_json::to_string_pretty(&value) {
                Ok(text) => println!("{text}"),
                Err(e) => {
                    eprintln!("bridle-harness: cannot print the outcome: {e}");
                    return ExitCode::from(1);
                }
            }
            ExitCode::SUCCESS
        }
        Err((code, message)) => {
            eprintln!("bridle-harness: {message}");
            ExitCode::from(code)
        }
    }
}
