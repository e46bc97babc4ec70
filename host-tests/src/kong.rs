//! Kong's wasm runtime for real: nginx with ngx_wasm_module on the Wasmtime C API, as
//! `scripts/build-kong-host.sh` builds it into `.tools/kong-host/`, running the release
//! `bridle.wasm` as a proxy-wasm filter. One nginx serves several Bridle configurations, one
//! per server (port), in front of one upstream.
//!
//! nginx.conf limits one parameter to 4 KB, and a filter's configuration is one parameter
//! (Kong hands it over through its Lua layer instead, without that limit). A configuration
//! whose inline policy would not fit is served the way a fleet would serve it: the policy as
//! a signed bundle from a control server, fetched by the filter through the runtime.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use serde_json::json;

use crate::bundle::{BundleKey, BundleSpec};
use crate::envoy::{fresh_dir, send_to, Request, Response};
use crate::upstream::{Reply, Upstream};
use crate::{paths, Error, IoContext};

/// nginx's longest configuration parameter (`NGX_CONF_BUFFER`), with room for quoting.
const MAX_PARAMETER: usize = 3800;

/// The nginx binary with ngx_wasm_module; an error says how to build it.
pub fn binary() -> Result<PathBuf, Error> {
    let path = paths::repo_root().join(".tools/kong-host/sbin/nginx");
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Missing(format!(
            "{} does not exist: build it with scripts/build-kong-host.sh (scripts/setup.sh runs it)",
            path.display()
        )))
    }
}

/// An nginx configuration string argument: single-quoted, with nginx's escapes undone.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn free_port() -> Result<u16, Error> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context(|| "finding a free port".into())?;
    Ok(listener
        .local_addr()
        .context(|| "reading a port".into())?
        .port())
}

pub struct Nginx {
    child: Child,
    dir: PathBuf,
    ports: Vec<u16>,
    /// Serves the policy bundles of configurations too long for nginx.conf.
    _control: Upstream,
    /// How many servers get their policy as a bundle.
    bundles: usize,
}

/// `config` with its inline policy moved into a bundle served by `control` at `path`, when the
/// configuration is too long to be one nginx.conf parameter.
fn fitted(config: &Value, control: &Upstream, path: &str) -> Result<Value, Error> {
    if config.to_string().len() <= MAX_PARAMETER {
        return Ok(config.clone());
    }
    let key = BundleKey::generate("kong-test");
    let mut spec = BundleSpec::new("kong-test");
    let policy = config.get("policy").cloned().unwrap_or_default();
    let modules = policy.get("modules").and_then(Value::as_array);
    for module in modules.into_iter().flatten() {
        let text = |field: &str| {
            module
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        spec = spec.file(text("name"), text("source"));
    }
    let data = policy.get("data").cloned().unwrap_or_else(|| json!({}));
    spec = spec.file("data.json", &data.to_string());
    let body = spec.build(&key)?;
    control.set_path_reply(
        path,
        Some(Reply {
            status: 200,
            headers: vec![("content-type".to_owned(), "application/gzip".to_owned())],
            body,
        }),
    );
    let mut fitted = config.clone();
    if let Some(fields) = fitted.as_object_mut() {
        if let Some(policy) = fields.get_mut("policy").and_then(Value::as_object_mut) {
            policy.insert("modules".into(), json!([]));
            policy.insert("data".into(), json!({}));
        }
        fields.insert(
            "bundle".into(),
            json!({"cluster": format!("127.0.0.1:{}", control.port()),
                "path": path, "poll_seconds": 60, "keys": {"keys": [key.jwk()]}}),
        );
    }
    Ok(fitted)
}

impl Nginx {
    /// Starts nginx with one server per configuration, each filtering with Bridle and then
    /// proxying to `upstream_port`.
    pub fn start(configs: &[Value], upstream_port: u16) -> Result<Self, Error> {
        let nginx = binary()?;
        let wasm = paths::wasm()?;
        let dir = fresh_dir("bridle-nginx")?;
        let control = Upstream::start()?;
        let mut bundles = 0;
        let mut ports = Vec::with_capacity(configs.len());
        let mut servers = String::new();
        for (index, config) in configs.iter().enumerate() {
            let config = fitted(config, &control, &format!("/bundles/{index}.tar.gz"))?;
            bundles += usize::from(config.get("bundle").is_some());
            let port = free_port()?;
            ports.push(port);
            servers.push_str(&format!(
                "    server {{\n        listen 127.0.0.1:{port};\n        location / {{\n            \
                 proxy_wasm bridle {};\n            proxy_pass http://127.0.0.1:{upstream_port};\n        \
                 }}\n    }}\n",
                quoted(&config.to_string())
            ));
        }
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log {dir}/error.log info;\n\
             pid {dir}/nginx.pid;\nevents {{}}\nwasm {{\n    module bridle {wasm};\n    shm_kv * 16m;\n}}\n\
             http {{\n    access_log off;\n    client_body_temp_path {dir}/body;\n    \
             proxy_temp_path {dir}/proxy;\n{servers}}}\n",
            dir = dir.display(),
            wasm = wasm.display(),
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).context(|| format!("writing {}", conf_path.display()))?;
        // Before its error log is open, nginx reports to stderr.
        let stderr_path = dir.join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path)
            .context(|| format!("creating {}", stderr_path.display()))?;
        let child = Command::new(nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context(|| "starting nginx".into())?;
        let mut nginx = Self {
            child,
            dir,
            ports,
            _control: control,
            bundles,
        };
        nginx.wait_ready(Duration::from_secs(30))?;
        nginx.wait_for_policies(Duration::from_secs(30))?;
        Ok(nginx)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().context(|| "polling nginx".into())? {
                return Err(Error::Missing(format!(
                    "nginx exited ({status}):\n{}",
                    self.error_log()
                )));
            }
            let up = self
                .ports
                .iter()
                .all(|port| std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok());
            if up {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Missing(format!(
                    "nginx not listening after {} s:\n{}",
                    timeout.as_secs(),
                    self.error_log()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every server whose policy comes as a bundle has activated it (the first
    /// bundle is fetched on the first tick after start).
    fn wait_for_policies(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let active = self
                .error_log()
                .matches("policy bundle revision `kong-test` active")
                .count();
            if active >= self.bundles {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Missing(format!(
                    "{active} of {} bundles active after {} s:\n{}",
                    self.bundles,
                    timeout.as_secs(),
                    self.error_log()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The port of the server of the `index`th configuration.
    pub fn port(&self, index: usize) -> Option<u16> {
        self.ports.get(index).copied()
    }

    /// Sends `request` to the server of the `index`th configuration.
    pub fn send(&self, index: usize, request: &Request) -> Result<Response, Error> {
        let port = self
            .port(index)
            .ok_or_else(|| Error::Missing(format!("no server {index}")))?;
        send_to(port, request)
    }

    /// nginx's error log, where ngx_wasm_module writes the filter's log lines (and what
    /// nginx wrote to stderr before it opened the log).
    pub fn error_log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        read("stderr.log") + &read("error.log")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
