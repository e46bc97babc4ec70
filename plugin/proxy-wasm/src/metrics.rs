//! The core's metrics (`bridle_core::metrics`) on the host's: each defined once, then updated
//! by id (Envoy prefixes the names with `wasmcustom.`).

use bridle_core::metrics::{Kind, Metric, Update};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MetricType};

/// The host's id of each [`Metric`], by index; empty before the configuration loaded.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    ids: Vec<Option<u32>>,
}

impl Metrics {
    pub fn define() -> Self {
        let ids = Metric::ALL
            .iter()
            .map(|metric| {
                let kind = match metric.kind() {
                    Kind::Counter => MetricType::Counter,
                    Kind::Gauge => MetricType::Gauge,
                };
                match hostcalls::define_metric(kind, metric.name()) {
                    Ok(id) => Some(id),
                    Err(status) => {
                        // A host without metrics still enforces; only the metric is lost.
                        crate::host::log(
                            LogLevel::Warn,
                            &format!("bridle: metric `{}` unavailable: {status:?}", metric.name()),
                        );
                        None
                    }
                }
            })
            .collect();
        Self { ids }
    }

    pub fn apply(&self, updates: impl IntoIterator<Item = Update>) {
        for update in updates {
            let (Update::Add(metric, _) | Update::Set(metric, _)) = update;
            let Some(id) = self.ids.get(metric as usize).copied().flatten() else {
                continue;
            };
            let _ = match update {
                Update::Add(_, n) => {
                    hostcalls::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX))
                }
                Update::Set(_, value) => hostcalls::record_metric(id, value),
            };
        }
    }
}
