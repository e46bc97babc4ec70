//! Metrics defined by the guest (`proxy_define_metric` and friends), with Envoy's rules.

use std::collections::BTreeMap;

use crate::abi::{MetricKind, Status};

/// The value of one metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricValue {
    Counter(u64),
    Gauge(u64),
    /// Every recorded sample, in order.
    Histogram(Vec<u64>),
}

impl MetricValue {
    fn new(kind: MetricKind) -> Self {
        match kind {
            MetricKind::Counter => Self::Counter(0),
            MetricKind::Gauge => Self::Gauge(0),
            MetricKind::Histogram => Self::Histogram(Vec::new()),
        }
    }

    /// The counter or gauge value; `None` for a histogram.
    pub fn value(&self) -> Option<u64> {
        match self {
            Self::Counter(v) | Self::Gauge(v) => Some(*v),
            Self::Histogram(_) => None,
        }
    }
}

/// Metric ids carry their kind in the low two bits, as in Envoy (`kMetricTypeMask`), so a
/// guest that confuses ids gets the same `NotFound` / `BadArgument` it would get there.
const KIND_BITS: u32 = 2;

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// Id `(n << KIND_BITS) | kind` is entry `n - 1`: its kind and its slot.
    ids: Vec<(MetricKind, usize)>,
    /// The same name defined twice (e.g. by two root contexts) shares one slot, as an Envoy
    /// stat of that name would.
    slots: Vec<(String, MetricKind, MetricValue)>,
}

impl Metrics {
    pub(crate) fn define(&mut self, kind: MetricKind, name: &str) -> Option<u32> {
        let index = u32::try_from(self.ids.len() + 1).ok()?;
        let id = index.checked_mul(1 << KIND_BITS)? | kind as u32;
        let slot = match self
            .slots
            .iter()
            .position(|(n, k, _)| *k == kind && n == name)
        {
            Some(slot) => slot,
            None => {
                self.slots
                    .push((name.to_owned(), kind, MetricValue::new(kind)));
                self.slots.len() - 1
            }
        };
        self.ids.push((kind, slot));
        Some(id)
    }

    fn lookup(&mut self, id: u32) -> Result<&mut MetricValue, Status> {
        let kind = MetricKind::from_raw(id & ((1 << KIND_BITS) - 1)).ok_or(Status::BadArgument)?;
        let index = usize::try_from(id >> KIND_BITS).map_err(|_| Status::NotFound)?;
        let (defined_kind, slot) = index
            .checked_sub(1)
            .and_then(|i| self.ids.get(i))
            .copied()
            .ok_or(Status::NotFound)?;
        if defined_kind != kind {
            return Err(Status::NotFound);
        }
        self.slots
            .get_mut(slot)
            .map(|(_, _, value)| value)
            .ok_or(Status::NotFound)
    }

    /// Envoy: counters only grow (offset must be > 0), gauges move both ways, histograms
    /// cannot be incremented.
    pub(crate) fn increment(&mut self, id: u32, offset: i64) -> Status {
        match self.lookup(id) {
            Ok(MetricValue::Counter(v)) if offset > 0 => {
                *v = v.saturating_add(offset.unsigned_abs());
                Status::Ok
            }
            Ok(MetricValue::Gauge(v)) => {
                *v = if offset >= 0 {
                    v.saturating_add(offset.unsigned_abs())
                } else {
                    v.saturating_sub(offset.unsigned_abs())
                };
                Status::Ok
            }
            Ok(_) => Status::BadArgument,
            Err(status) => status,
        }
    }

    /// Envoy: a counter adds the value, a gauge is set to it, a histogram records a sample.
    pub(crate) fn record(&mut self, id: u32, value: u64) -> Status {
        match self.lookup(id) {
            Ok(MetricValue::Counter(v)) => *v = v.saturating_add(value),
            Ok(MetricValue::Gauge(v)) => *v = value,
            Ok(MetricValue::Histogram(samples)) => samples.push(value),
            Err(status) => return status,
        }
        Status::Ok
    }

    pub(crate) fn get(&mut self, id: u32) -> Result<u64, Status> {
        self.lookup(id)?.value().ok_or(Status::BadArgument)
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<&MetricValue> {
        self.slots
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, v)| v)
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, MetricValue> {
        self.slots
            .iter()
            .map(|(name, _, value)| (name.clone(), value.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_follow_envoy_rules() {
        let mut m = Metrics::default();
        let id = m.define(MetricKind::Counter, "c").unwrap();
        assert_eq!(m.increment(id, 2), Status::Ok);
        assert_eq!(m.increment(id, 0), Status::BadArgument);
        assert_eq!(m.increment(id, -1), Status::BadArgument);
        assert_eq!(m.record(id, 3), Status::Ok);
        assert_eq!(m.get(id), Ok(5));
        assert_eq!(m.by_name("c"), Some(&MetricValue::Counter(5)));
    }

    #[test]
    fn gauges_and_histograms() {
        let mut m = Metrics::default();
        let g = m.define(MetricKind::Gauge, "g").unwrap();
        let h = m.define(MetricKind::Histogram, "h").unwrap();
        assert_eq!(m.record(g, 10), Status::Ok);
        assert_eq!(m.increment(g, -3), Status::Ok);
        assert_eq!(m.get(g), Ok(7));
        assert_eq!(m.record(h, 4), Status::Ok);
        assert_eq!(m.increment(h, 1), Status::BadArgument);
        assert_eq!(m.get(h), Err(Status::BadArgument));
        assert_eq!(
            m.snapshot().get("h"),
            Some(&MetricValue::Histogram(vec![4]))
        );
    }

    #[test]
    fn unknown_ids_are_not_found() {
        let mut m = Metrics::default();
        assert_eq!(m.increment(4, 1), Status::NotFound);
        assert_eq!(m.get(0), Err(Status::NotFound));
        let c = m.define(MetricKind::Counter, "c").unwrap();
        // Same slot, wrong kind bits.
        assert_eq!(m.get(c | 1), Err(Status::NotFound));
        assert_eq!(m.get(c | 3), Err(Status::BadArgument));
    }

    #[test]
    fn redefinition_shares_the_value() {
        let mut m = Metrics::default();
        let a = m.define(MetricKind::Counter, "c").unwrap();
        let b = m.define(MetricKind::Counter, "c").unwrap();
        assert_ne!(a, b);
        m.increment(a, 1);
        m.increment(b, 1);
        assert_eq!(m.get(a), Ok(2));
    }
}
