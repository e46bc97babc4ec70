//! A real Envoy with the compiled filter: renders `envoy/bridle.yaml.tmpl`, starts the binary,
//! waits until it is ready, sends requests, and always stops it.
//!
//! Each fixture gets its own directory (config, log) under the system temp dir. Ports are
//! chosen by Envoy (port 0) and read back from the admin interface, so parallel tests never
//! race for a port. When a test panics, dropping the fixture prints the end of Envoy's log and
//! keeps the directory.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http1::{self, Framing};
use crate::tls::DownstreamTls;
use crate::upstream::Upstream;
use crate::{paths, Error, IoContext};

/// The shipped configuration template.
pub const TEMPLATE: &str = include_str!("../../envoy/bridle.yaml.tmpl");

/// Lines of the log shown when something fails.
const TAIL_LINES: usize = 60;

/// What to render and how to run it.
#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    /// Bridle's configuration document.
    pub plugin_config: Value,
    pub upstream_port: u16,
    /// The `bridle-control` cluster's port; default: the upstream's.
    pub control_port: Option<u16>,
    /// The access log; default: `access.log` in the fixture's directory (`/dev/null` when
    /// only rendering).
    pub access_log: Option<PathBuf>,
    /// HTTP filters before Bridle (e.g. [`jwt_authn`]); none by default.
    pub pre_filters: Vec<Value>,
    /// The filter module; default [`paths::wasm`].
    pub wasm: Option<PathBuf>,
    /// 0: any free port (read back once Envoy is ready).
    pub listen_port: u16,
    pub admin_port: u16,
    /// Envoy's `-l`; default `warn` (`$BRIDLE_ENVOY_LOG_LEVEL`). The `wasm` component always
    /// logs at `info` so audit events are in the log.
    pub log_level: String,
    /// Bound on start-up; default 60 s (`$BRIDLE_ENVOY_READY_SECS`). V8 compiles the module
    /// at start, which takes seconds on a loaded 2-core machine.
    pub ready_timeout: Duration,
    /// Test-only: the `upstream` cluster keeps HTTP/1 trailers (request trailers go upstream
    /// in the chunked body, response trailers from the upstream reach the caller). Envoy drops
    /// them by default; the shipped template leaves that default. Default off.
    pub upstream_http1_trailers: bool,
    /// Test-only: the `bridle` listener speaks TLS (e.g. requiring client certificates, whose
    /// URI SAN Envoy reports as `connection.uri_san_peer_certificate`); plain TCP by default.
    pub downstream_tls: Option<DownstreamTls>,
}

impl EnvoyOptions {
    pub fn new(plugin_config: Value, upstream_port: u16) -> Self {
        let ready_secs = std::env::var("BRIDLE_ENVOY_READY_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60);
        Self {
            plugin_config,
            upstream_port,
            control_port: None,
            access_log: None,
            pre_filters: Vec::new(),
            wasm: None,
            listen_port: 0,
            admin_port: 0,
            log_level: std::env::var("BRIDLE_ENVOY_LOG_LEVEL").unwrap_or_else(|_| "warn".into()),
            ready_timeout: Duration::from_secs(ready_secs),
            upstream_http1_trailers: false,
            downstream_tls: None,
        }
    }

    fn wasm_path(&self) -> Result<PathBuf, Error> {
        match &self.wasm {
            Some(path) => Ok(path.clone()),
            None => paths::wasm(),
        }
    }

    /// The Envoy configuration text.
    pub fn render(&self) -> Result<String, Error> {
        let mut text = self.render_template()?;
        if self.upstream_http1_trailers {
            text = with_upstream_http1_trailers(&text)?;
        }
        if let Some(tls) = &self.downstream_tls {
            text = with_downstream_tls(&text, tls)?;
        }
        Ok(text)
    }

    fn render_template(&self) -> Result<String, Error> {
        render(
            TEMPLATE,
            &[
                ("LISTEN_PORT", self.listen_port.to_string()),
                ("ADMIN_PORT", self.admin_port.to_string()),
                ("UPSTREAM_PORT", self.upstream_port.to_string()),
                (
                    "PRE_FILTERS",
                    self.pre_filters
                        .iter()
                        .map(|f| format!("- {f}"))
                        .collect::<Vec<_>>()
                        .join("\n          "),
                ),
                (
                    "CONTROL_PORT",
                    self.control_port.unwrap_or(self.upstream_port).to_string(),
                ),
                (
                    "ACCESS_LOG",
                    serde_json::to_string(
                        &self
                            .access_log
                            .as_deref()
                            .unwrap_or(Path::new("/dev/null"))
                            .to_string_lossy(),
                    )?,
                ),
                // A JSON string literal is a valid YAML double-quoted scalar: whatever the
                // path or the configuration holds, it cannot escape its field.
                (
                    "WASM_PATH",
                    serde_json::to_string(&self.wasm_path()?.to_string_lossy())?,
                ),
                (
                    "PLUGIN_CONFIG",
                    serde_json::to_string(&serde_json::to_string(&self.plugin_config)?)?,
                ),
            ],
        )
    }
}

/// The entry of `static_resources.<list>` named `name` in a rendered configuration.
fn static_resource<'a>(
    config: &'a mut serde_yaml::Value,
    list: &str,
    name: &str,
) -> Option<&'a mut serde_yaml::Value> {
    config
        .get_mut("static_resources")?
        .get_mut(list)?
        .as_sequence_mut()?
        .iter_mut()
        .find(|entry| entry.get("name").and_then(serde_yaml::Value::as_str) == Some(name))
}

/// The rendered configuration `text` with HTTP/1 trailers enabled on the `upstream` cluster
/// (`explicit_http_config.http_protocol_options.enable_trailers`), re-emitted as YAML.
fn with_upstream_http1_trailers(text: &str) -> Result<String, Error> {
    let mut config: serde_yaml::Value = serde_yaml::from_str(text)?;
    let cluster = static_resource(&mut config, "clusters", "upstream")
        .and_then(serde_yaml::Value::as_mapping_mut)
        .ok_or_else(|| Error::Missing("the template has no `upstream` cluster".into()))?;
    let options = serde_json::json!({
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http_protocol_options": {"enable_trailers": true}},
        }
    });
    cluster.insert(
        "typed_extension_protocol_options".into(),
        serde_yaml::to_value(options)?,
    );
    Ok(serde_yaml::to_string(&config)?)
}

/// The rendered configuration `text` with `tls` as the transport socket of the `bridle`
/// listener's filter chain, re-emitted as YAML.
fn with_downstream_tls(text: &str, tls: &DownstreamTls) -> Result<String, Error> {
    let mut config: serde_yaml::Value = serde_yaml::from_str(text)?;
    let chain = static_resource(&mut config, "listeners", "bridle")
        .and_then(|listener| listener.get_mut("filter_chains")?.get_mut(0))
        .and_then(serde_yaml::Value::as_mapping_mut)
        .ok_or_else(|| Error::Missing("the template has no `bridle` filter chain".into()))?;
    chain.insert(
        "transport_socket".into(),
        serde_yaml::to_value(tls.transport_socket())?,
    );
    Ok(serde_yaml::to_string(&config)?)
}

/// Envoy's `jwt_authn` verifying `issuer`'s tokens on every route, as Bridle's
/// `identity.host_verification` expects: the verified payload forwarded in `payload_header`,
/// and recorded in dynamic metadata (the proof Bridle checks).
pub fn jwt_authn(issuer: &crate::TestIssuer, payload_header: &str) -> Result<Value, Error> {
    let jwks = serde_json::json!({"keys": [issuer.jwk()?]}).to_string();
    Ok(serde_json::json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"workload": {
                "issuer": issuer.iss, "audiences": issuer.audiences,
                "local_jwks": {"inline_string": jwks},
                "forward": true, "forward_payload_header": payload_header,
                "payload_in_metadata": "workload",
                "jwt_cache_config": {"jwt_cache_size": 1024}
            }},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "workload"}}]
        }
    }))
}

/// Replaces every `${NAME}` in one pass (a value is never searched for placeholders itself);
/// a placeholder without a value, outside comments, is an error.
pub fn render(template: &str, values: &[(&str, String)]) -> Result<String, Error> {
    let mut out = String::with_capacity(template.len());
    for line in template.split_inclusive('\n') {
        let comment = line.trim_start().starts_with('#');
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            let (before, after) = rest.split_at(start);
            out.push_str(before);
            let name = after
                .strip_prefix("${")
                .and_then(|a| a.split_once('}'))
                .map(|(name, _)| name);
            let value = name.and_then(|name| values.iter().find(|(n, _)| *n == name));
            match (name, value) {
                (Some(name), Some((_, value))) if !comment => {
                    out.push_str(value);
                    rest = after.get(name.len() + 3..).unwrap_or_default();
                }
                _ if comment => {
                    out.push_str("${");
                    rest = after.get(2..).unwrap_or_default();
                }
                _ => {
                    return Err(Error::Missing(format!(
                        "template placeholder without a value: `{}`",
                        line.trim()
                    )))
                }
            }
        }
        out.push_str(rest);
    }
    Ok(out)
}

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A new empty directory `<prefix>-<pid>-<n>` under the system temp dir.
pub(crate) fn fresh_dir(prefix: &str) -> Result<PathBuf, Error> {
    let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all.iter()
        .skip(all.len().saturating_sub(lines))
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `envoy --mode validate` on a configuration file. Validation loads the module in V8
/// and runs the plugin's `on_configure`, so it also catches a configuration Bridle refuses.
pub fn validate_file(config: &Path) -> Result<(), Error> {
    let output = Command::new(paths::envoy()?)
        .args([
            "--mode",
            "validate",
            "-l",
            "warn",
            "--component-log-level",
            "wasm:info",
            "-c",
        ])
        .arg(config)
        .output()
        .context(|| "running envoy --mode validate".into())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::Invalid {
            path: config.to_path_buf(),
            output: tail(
                &format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
                TAIL_LINES,
            ),
        })
    }
}

/// Renders `options` into a fresh directory and validates the result; returns the file.
pub fn validate(options: &EnvoyOptions) -> Result<PathBuf, Error> {
    let dir = fresh_dir("bridle-envoy")?;
    let path = dir.join("envoy.yaml");
    std::fs::write(&path, options.render()?).context(|| format!("writing {}", path.display()))?;
    validate_file(&path)?;
    // Kept only on failure, for inspection.
    let _ = std::fs::remove_dir_all(&dir);
    Ok(path)
}

/// A running Envoy; killed when dropped.
pub struct Envoy {
    child: Child,
    dir: PathBuf,
    log_path: PathBuf,
    access_log: PathBuf,
    admin_port: u16,
    port: u16,
}

impl Envoy {
    /// Envoy with this plugin configuration in front of `upstream`.
    pub fn start(plugin_config: &Value, upstream: &Upstream) -> Result<Self, Error> {
        Self::start_with(&EnvoyOptions::new(plugin_config.clone(), upstream.port()))
    }

    /// Starts Envoy and waits until it is ready. If it exits first (for instance because
    /// the plugin refused its configuration), the error carries the end of its log.
    pub fn start_with(options: &EnvoyOptions) -> Result<Self, Error> {
        let envoy = paths::envoy()?;
        let dir = fresh_dir("bridle-envoy")?;
        let mut options = options.clone();
        let access_log = options
            .access_log
            .get_or_insert_with(|| dir.join("access.log"))
            .clone();
        let text = options.render()?;
        let config_path = dir.join("envoy.yaml");
        std::fs::write(&config_path, text)
            .context(|| format!("writing {}", config_path.display()))?;
        let log_path = dir.join("envoy.log");
        let admin_path = dir.join("admin-address");
        let log = File::create(&log_path).context(|| format!("creating {}", log_path.display()))?;
        let log_out = log.try_clone().context(|| "log handle".into())?;
        // Logs go to stderr, captured in a file: unbuffered, so the log is complete as soon
        // as a request returns (Envoy's --log-path file is flushed on a timer).
        let child = Command::new(envoy)
            .arg("-c")
            .arg(&config_path)
            .args(["--concurrency", "1", "--disable-hot-restart"])
            .args(["-l", &options.log_level])
            .args(["--component-log-level", "wasm:info"])
            .arg("--admin-address-path")
            .arg(&admin_path)
            .stdin(Stdio::null())
            .stdout(log_out)
            .stderr(log)
            .spawn()
            .context(|| "starting envoy".into())?;
        let mut envoy = Self {
            child,
            dir,
            log_path,
            access_log,
            admin_port: 0,
            port: 0,
        };
        envoy.wait_ready(&admin_path, options.ready_timeout)?;
        Ok(envoy)
    }

    fn wait_ready(&mut self, admin_path: &Path, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().context(|| "polling envoy".into())? {
                return Err(Error::EnvoyExited {
                    status: status.to_string(),
                    log: self.log_tail(TAIL_LINES),
                });
            }
            if self.admin_port == 0 {
                self.admin_port = std::fs::read_to_string(admin_path)
                    .ok()
                    .and_then(|a| a.trim().rsplit(':').next().and_then(|p| p.parse().ok()))
                    .unwrap_or(0);
            }
            if self.admin_port != 0 {
                let ready = self.admin("/ready").is_ok_and(|r| r.status == 200);
                if ready {
                    self.port = self.listener_port()?;
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(Error::EnvoyTimeout {
                    seconds: timeout.as_secs(),
                    log: self.log_tail(TAIL_LINES),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn listener_port(&self) -> Result<u16, Error> {
        let listeners = self.admin("/listeners?format=json")?.json()?;
        listeners
            .get("listener_statuses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|l| l.get("name").and_then(Value::as_str) == Some("bridle"))
            .find_map(|l| {
                l.pointer("/local_address/socket_address/port_value")
                    .and_then(Value::as_u64)
            })
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| Error::Http(format!("no `bridle` listener in {listeners}")))
    }

    /// The listener's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// The fixture's directory (rendered `envoy.yaml`, `envoy.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Envoy's whole log so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log(), lines)
    }

    /// The audit events Bridle logged so far (lines behind `bridle.audit `), oldest first.
    pub fn audit_events(&self) -> Vec<Value> {
        self.log()
            .lines()
            .filter_map(|line| line.split_once("bridle.audit ").map(|(_, json)| json))
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect()
    }

    /// The access log's JSON lines so far (Envoy flushes it on a timer: poll for what you
    /// expect).
    pub fn access_log_entries(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// A request to the admin interface.
    pub fn admin(&self, target: &str) -> Result<Response, Error> {
        send_to(self.admin_port, &Request::new("GET", target))
    }

    /// Counters and gauges whose name contains `filter` (e.g. `bridle.decisions`).
    pub fn stats(&self, filter: &str) -> Result<Vec<(String, u64)>, Error> {
        let stats = self
            .admin(&format!("/stats?format=json&filter={filter}"))?
            .json()?;
        Ok(stats
            .get("stats")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| {
                let name = s.get("name")?.as_str()?.to_owned();
                let value = s.get("value")?.as_u64()?;
                Some((name, value))
            })
            .collect())
    }

    /// Sends one request to the listener (a new connection, closed after the response).
    pub fn send(&self, request: &Request) -> Result<Response, Error> {
        send_to(self.port, request)
    }

    /// Sends `request` through the listener as a slow chunked upload (see [`send_chunked_to`]).
    pub fn send_chunked(
        &self,
        request: &Request,
        chunks: &[&[u8]],
        pause: Duration,
    ) -> Result<Response, Error> {
        send_chunked_to(self.port(), request, chunks, pause)
    }

    /// `GET target` with these headers.
    pub fn get(&self, target: &str, headers: &[(&str, &str)]) -> Result<Response, Error> {
        let mut request = Request::new("GET", target);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        self.send(&request)
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- envoy log ({}), last {TAIL_LINES} lines ---\n{}\n--- end of envoy log ---",
                self.log_path.display(),
                self.log_tail(TAIL_LINES)
            );
        } else if std::env::var_os("BRIDLE_KEEP_ENVOY").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// An HTTP/1.1 request as sent on the wire.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target, sent as is (no normalization).
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn new(method: &str, target: &str) -> Self {
        Self {
            method: method.to_owned(),
            target: target.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn get(target: &str) -> Self {
        Self::new("GET", target)
    }

    pub fn post(target: &str) -> Self {
        Self::new("POST", target)
    }

    /// Adds a header (repeated names are sent repeatedly).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// A JSON body with its content type.
    pub fn json(self, body: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(body.to_string())
    }

    /// The request's bytes on the wire.
    pub(crate) fn wire(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        let has = |name: &str| http1::header(&self.headers, name).is_some();
        if !has("host") {
            head.push_str("host: bridle.test\r\n");
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let needs_length =
            !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH");
        if needs_length && !has("content-length") && !has("transfer-encoding") {
            head.push_str(&format!("content-length: {}\r\n", self.body.len()));
        }
        head.push_str("connection: close\r\n\r\n");
        let mut wire = head.into_bytes();
        wire.extend_from_slice(&self.body);
        wire
    }
}

/// A response as received.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        http1::header(&self.headers, name)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<Value, Error> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}

/// Sends `request` with its body as `transfer-encoding: chunked`, one chunk per item of
/// `chunks`, pausing `pause` before each: a slow client. The request's own body is ignored.
pub fn send_chunked_to(
    port: u16,
    request: &Request,
    chunks: &[&[u8]],
    pause: Duration,
) -> Result<Response, Error> {
    let head = Request {
        body: Vec::new(),
        ..request.clone()
    }
    .header("transfer-encoding", "chunked");
    let mut stream = connect(port)?;
    stream
        .write_all(&head.wire())
        .context(|| "sending the request head".into())?;
    for chunk in chunks {
        std::thread::sleep(pause);
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(chunk);
        frame.extend_from_slice(b"\r\n");
        // The proxy may answer (413) and close before the client is done: stop sending then.
        if stream.write_all(&frame).is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    read_response(stream, &head.method)
}

/// A connection to 127.0.0.1:`port` that gives up reading after 30 s.
fn connect(port: u16) -> Result<TcpStream, Error> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(10))
        .context(|| format!("connecting to 127.0.0.1:{port}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .context(|| "read timeout".into())?;
    Ok(stream)
}

/// Sends `request` to 127.0.0.1:`port` and reads the whole response.
pub fn send_to(port: u16, request: &Request) -> Result<Response, Error> {
    let mut stream = connect(port)?;
    stream
        .write_all(&request.wire())
        .context(|| format!("sending {} {}", request.method, request.target))?;
    read_response(stream, &request.method)
}

/// Reads one response to a `method` request from `stream`.
pub(crate) fn read_response(stream: impl Read, method: &str) -> Result<Response, Error> {
    let mut reader = BufReader::new(stream);
    let head = http1::read_head(&mut reader)?
        .ok_or_else(|| Error::Http("connection closed before a response".into()))?;
    let status: u16 = head
        .start
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Http(format!("bad status line `{}`", head.start)))?;
    let framing = if method == "HEAD" || status == 204 || status == 304 || status < 200 {
        Framing::None
    } else {
        http1::framing(&head.headers, true)?
    };
    let body = http1::read_body(&mut reader, framing)?;
    Ok(Response {
        status,
        headers: head.headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hostile_config() -> Value {
        json!({
            "issuers": [],
            "policy": {"entrypoint": "data.x", "modules": []},
            "environment": {
                "name": "prod",
                "note": "quote \" backslash \\ newline \n tab \t ${LISTEN_PORT} # not: a comment 'single' é ✓ \u{0007}",
            },
        })
    }

    #[test]
    fn the_plugin_configuration_survives_yaml_embedding_byte_for_byte() {
        let mut options = EnvoyOptions::new(hostile_config(), 4242);
        options.wasm = Some(PathBuf::from("/tmp/with \"quote\" and ${ADMIN_PORT}.wasm"));
        let text = options.render().unwrap();
        let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let wasm = &yaml["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"]["http_filters"][0]["typed_config"]["config"];
        let embedded = wasm["configuration"]["value"].as_str().unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(embedded).unwrap(),
            hostile_config()
        );
        assert_eq!(
            wasm["vm_config"]["code"]["local"]["filename"].as_str(),
            Some("/tmp/with \"quote\" and ${ADMIN_PORT}.wasm")
        );
        let cluster = &yaml["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]
            ["lb_endpoints"][0]["endpoint"]["address"]["socket_address"];
        assert_eq!(cluster["port_value"].as_u64(), Some(4242));
        assert_eq!(wasm["failure_policy"].as_str(), Some("FAIL_CLOSED"));
    }

    #[test]
    fn rendering_fills_every_placeholder_once_and_refuses_unknown_ones() {
        let values = [("A", "${B}".to_owned()), ("B", "b".to_owned())];
        assert_eq!(render("x: ${A} ${B}\n", &values).unwrap(), "x: ${B} b\n");
        assert_eq!(render("# ${C}\ny: 1\n", &values).unwrap(), "# ${C}\ny: 1\n");
        assert!(render("x: ${C}\n", &values).is_err());
        assert!(render("x: ${A\n", &values).is_err());
    }

    #[test]
    fn upstream_http1_trailers_touch_only_the_upstream_cluster() {
        let mut options = EnvoyOptions::new(hostile_config(), 4242);
        options.wasm = Some(PathBuf::from("/x.wasm"));
        let plain: serde_yaml::Value = serde_yaml::from_str(&options.render().unwrap()).unwrap();
        options.upstream_http1_trailers = true;
        let text = options.render().unwrap();
        let mut yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let clusters = &mut yaml["static_resources"]["clusters"];
        let upstream = clusters[0].as_mapping_mut().unwrap();
        let protocol = upstream.remove("typed_extension_protocol_options").unwrap();
        assert_eq!(
            protocol["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
                ["explicit_http_config"]["http_protocol_options"]["enable_trailers"]
                .as_bool(),
            Some(true)
        );
        // Without it, the same document: the plugin configuration included.
        assert_eq!(yaml, plain);
    }

    #[test]
    fn downstream_tls_is_the_bridle_listener_transport_socket_only() {
        let mut options = EnvoyOptions::new(hostile_config(), 4242);
        options.wasm = Some(PathBuf::from("/x.wasm"));
        let plain: serde_yaml::Value = serde_yaml::from_str(&options.render().unwrap()).unwrap();
        options.downstream_tls = Some(DownstreamTls {
            cert_chain: PathBuf::from("/pki/server.pem"),
            private_key: PathBuf::from("/pki/server.key"),
            client_ca: PathBuf::from("/pki/ca.pem"),
            require_client_certificate: true,
        });
        let mut yaml: serde_yaml::Value = serde_yaml::from_str(&options.render().unwrap()).unwrap();
        let chain = yaml["static_resources"]["listeners"][0]["filter_chains"][0]
            .as_mapping_mut()
            .unwrap();
        let socket = chain.remove("transport_socket").unwrap();
        let context = &socket["typed_config"];
        assert_eq!(
            context["@type"].as_str(),
            Some("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext")
        );
        assert_eq!(context["require_client_certificate"].as_bool(), Some(true));
        let common = &context["common_tls_context"];
        assert_eq!(
            common["validation_context"]["trusted_ca"]["filename"].as_str(),
            Some("/pki/ca.pem")
        );
        assert_eq!(
            common["tls_certificates"][0]["private_key"]["filename"].as_str(),
            Some("/pki/server.key")
        );
        assert_eq!(yaml, plain);
    }

    #[test]
    fn every_placeholder_of_the_shipped_template_gets_a_value() {
        let mut options = EnvoyOptions::new(json!({}), 1);
        options.wasm = Some(PathBuf::from("/x.wasm"));
        let text = options.render().unwrap();
        assert!(text.contains("filename: \"/x.wasm\""));
    }
}
