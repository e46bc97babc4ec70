//! Loading a module: one process-wide engine, compiled modules cached per file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use wasmtime::{Config, Engine, InstancePre, Linker, Module, Store};

use crate::error::HarnessError;
use crate::options::PluginOptions;
use crate::plugin::Plugin;
use crate::state::HostState;
use crate::{hostcalls, wasi};

/// Granularity of execution budgets. A background thread bumps the engine's epoch this often;
/// every guest call gets a deadline of `budget / EPOCH_TICK` epochs.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Exports that mark a proxy-wasm 0.2 module (Envoy refuses a module without one).
const ABI_VERSIONS: [&str; 2] = ["proxy_abi_version_0_2_1", "proxy_abi_version_0_2_0"];

/// A compiled proxy-wasm module, ready to start plugins from. Cloning is cheap.
#[derive(Clone)]
pub struct Harness {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    pre: InstancePre<HostState>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").finish_non_exhaustive()
    }
}

/// Bounding execution with epochs instead of fuel: the compiled code only checks a counter at
/// function entries and loop headers (a few percent), where fuel accounting costs on every
/// basic block. One engine serves the whole process so there is one ticker thread.
fn engine() -> Result<Engine, HarnessError> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.epoch_interruption(true);
            if std::env::var_os("BRIDLE_HARNESS_PERFMAP").is_some() {
                // `perf report` names guest functions from /tmp/perf-<pid>.map (a module with a
                // name section, i.e. built with `strip = false`).
                config.profiler(wasmtime::ProfilingStrategy::PerfMap);
            }
            let engine = Engine::new(&config).map_err(|e| format!("{e:#}"))?;
            let ticker = engine.clone();
            std::thread::Builder::new()
                .name("wasmtime-harness-epoch".to_owned())
                .spawn(move || loop {
                    std::thread::sleep(EPOCH_TICK);
                    ticker.increment_epoch();
                })
                .map_err(|e| format!("cannot start the epoch thread: {e}"))?;
            Ok(engine)
        })
        .clone()
        .map_err(HarnessError::Load)
}

type CacheKey = (PathBuf, u64, Option<SystemTime>);

impl Harness {
    /// Compiles the module at `wasm_path`, checks that it is a proxy-wasm 0.2 module and that
    /// the harness provides every function it imports.
    ///
    /// Compiled modules are cached for the life of the process, keyed by path, size and
    /// modification time, so many tests can load the same file cheaply.
    pub fn load(wasm_path: impl AsRef<Path>) -> Result<Self, HarnessError> {
        static CACHE: OnceLock<Mutex<HashMap<CacheKey, Harness>>> = OnceLock::new();
        let path = wasm_path.as_ref();
        let io = |source| HarnessError::Io {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        let key = (
            std::fs::canonicalize(path).map_err(io)?,
            meta.len(),
            meta.modified().ok(),
        );
        // Held while compiling: concurrent tests wait for one compilation instead of each
        // compiling the same module.
        let mut cache = CACHE
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(harness) = cache.get(&key) {
            return Ok(harness.clone());
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let harness = Self::from_bytes(&bytes)?;
        cache.insert(key, harness.clone());
        Ok(harness)
    }

    /// Compiles a module from bytes (no caching).
    pub fn from_bytes(wasm: &[u8]) -> Result<Self, HarnessError> {
        let engine = engine()?;
        let module =
            Module::new(&engine, wasm).map_err(|e| HarnessError::Load(format!("{e:#}")))?;
        if !module.exports().any(|e| ABI_VERSIONS.contains(&e.name())) {
            return Err(HarnessError::Load(format!(
                "the module exports none of {ABI_VERSIONS:?}; is it a proxy-wasm 0.2 module?"
            )));
        }

        let mut linker = Linker::new(&engine);
        hostcalls::add_to_linker(&mut linker)
            .and_then(|_| wasi::add_to_linker(&mut linker))
            .map_err(|e| HarnessError::Load(format!("cannot define host functions: {e:#}")))?;

        // Name every import the harness lacks at once, rather than failing on the first or
        // stubbing it silently.
        let mut probe = Store::new(&engine, HostState::empty());
        let missing: Vec<String> = module
            .imports()
            .filter(|import| {
                linker
                    .get(&mut probe, import.module(), import.name())
                    .is_err()
            })
            .map(|import| format!("{}::{}", import.module(), import.name()))
            .collect();
        if !missing.is_empty() {
            return Err(HarnessError::UnsupportedImports { imports: missing });
        }

        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| HarnessError::Load(format!("{e:#}")))?;
        Ok(Self {
            inner: Arc::new(Inner { engine, pre }),
        })
    }

    /// Starts a plugin: instantiates the module, calls `_initialize`,
    /// `proxy_on_context_create(root, 0)`, `proxy_on_vm_start` and `proxy_on_configure`, as
    /// Envoy does when it loads a filter. A configuration the plugin refuses is
    /// [`HarnessError::ConfigureRejected`].
    pub fn start(&self, opts: PluginOptions) -> Result<Plugin, HarnessError> {
        Plugin::start(&self.inner.engine, &self.inner.pre, opts)
    }

    /// [`Harness::start`] with this plugin configuration and otherwise default options.
    pub fn start_with_config(&self, config: impl Into<Vec<u8>>) -> Result<Plugin, HarnessError> {
        self.start(PluginOptions::with_config(config))
    }
}
