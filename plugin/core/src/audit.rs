//! The audit event every decision produces: a first-class identity event.

use std::ops::Deref;
use std::rc::Rc;

use serde::Serialize;

use crate::decision::Outcome;
use crate::error::{check_endpoint, check_range, ConfigError};

/// A string every decision repeats (who acted, which policy): shared, not copied per event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shared(Rc<str>);

impl Deref for Shared {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Shared {
    fn from(s: &str) -> Self {
        Self(s.into())
    }
}

impl From<String> for Shared {
    fn from(s: String) -> Self {
        Self(s.into())
    }
}

impl Serialize for Shared {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub kind: &'static str,
    pub decision_id: String,
    pub time: String,
    pub outcome: Outcome,
    pub status: u16,
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentRef>,
    /// The task credential's `txn`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The delegation chain, origin first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delegation: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<IntentRef>,
    /// For escalations: the digest of the action that needs (or got) approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// The decision was evaluated and recorded but not enforced.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    pub request: RequestRef,
    pub policy: PolicyRef,
    pub latency_us: u64,
}

/// Who acted. Tokens appear only by digest and `jti`, never whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRef {
    pub issuer: Shared,
    /// The caller: a delegated credential's current actor, else its subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Shared>,
    /// Whom a delegated credential's caller acts for (its `sub`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<Shared>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spiffe_id: Option<Shared>,
    /// The agent's accountable owner, from the agent inventory (`delegation.inventory`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Shared>,
    pub token_digest: Shared,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<Shared>,
    pub cache_hit: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRef {
    pub method: String,
    pub authority: String,
    /// The path without its query: query strings can carry secrets.
    pub path: String,
}

/// What was attempted. Tool arguments are left out unless the configuration includes them,
/// and then with the configured keys masked: they can carry data the audit trail must not copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntentRef {
    pub protocol: &'static str,
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Replaces the values of `keys` (at any depth) with `"***"`.
/// Keys match whatever their ASCII case: `Password` and `PASSWORD` carry what `password`
/// does. (Unicode case folding would bring its tables into the module for key names that are
/// ASCII in practice.)
fn same_key(configured: &str, key: &str) -> bool {
    configured.eq_ignore_ascii_case(key)
}

pub fn mask(value: &mut serde_json::Value, keys: &[String]) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if keys.iter().any(|k| same_key(k, key)) {
                    *item = serde_json::Value::from("***");
                } else {
                    mask(item, keys);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|item| mask(item, keys)),
        _ => {}
    }
}

impl From<&crate::intent::Intent> for IntentRef {
    fn from(intent: &crate::intent::Intent) -> Self {
        Self {
            protocol: intent.protocol.as_str(),
            action: intent.action.as_str(),
            route: intent.route.clone(),
            resource: intent.resource.clone(),
            rpc_method: intent.rpc_method.clone(),
            tool: intent.tool.clone(),
            data_class: intent.data_class.clone(),
            arguments: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyRef {
    pub entrypoint: Shared,
    /// `bundle` or `config`.
    pub source: &'static str,
    pub revision: Shared,
}

impl AuditEvent {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            format!(
                "{{\"kind\":\"{}\",\"decision_id\":\"{}\"}}",
                self.kind, self.decision_id
            )
        })
    }
}

/// RFC 3339 UTC time with microseconds, from unix nanoseconds.
pub fn rfc3339(unix_nanos: u64) -> String {
    let secs = unix_nanos / 1_000_000_000;
    let micros = (unix_nanos % 1_000_000_000) / 1_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    // Every decision pays for this: digits by hand, not `format!`.
    let mut out = String::with_capacity(27);
    push_digits(&mut out, year, 4);
    out.push('-');
    push_digits(&mut out, month, 2);
    out.push('-');
    push_digits(&mut out, day, 2);
    out.push('T');
    push_digits(&mut out, rem / 3600, 2);
    out.push(':');
    push_digits(&mut out, rem % 3600 / 60, 2);
    out.push(':');
    push_digits(&mut out, rem % 60, 2);
    out.push('.');
    push_digits(&mut out, micros, 6);
    out.push('Z');
    out
}

/// The last `width` decimal digits of `value`, zero-padded.
fn push_digits(out: &mut String, value: u64, width: u32) {
    let mut divisor = 10u64.pow(width.saturating_sub(1));
    while divisor > 0 {
        out.push(char::from(b'0' + (value / divisor % 10) as u8));
        divisor /= 10;
    }
}

// Howard Hinnant's days-to-civil algorithm, for days since 1970-01-01 (unsigned: no dates
// before the epoch reach here).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Checks `audit.collector`: every setting must let events leave. A zero batch or flush period
/// would export nothing (in Envoy a zero tick period stops every timer the filter has).
pub fn check_collector(collector: &crate::config::RawCollector) -> Result<(), ConfigError> {
    let at = |field: &str| format!("audit.collector.{field}");
    check_endpoint("audit.collector", &collector.cluster, &collector.path)?;
    let batch_size = collector.batch_size as u64;
    check_range(at("batch_size"), batch_size, 1, 10_000)?;
    check_range(at("flush_ms"), collector.flush_ms, 10, 60_000)?;
    check_range(
        at("max_buffered"),
        collector.max_buffered as u64,
        batch_size,
        1_000_000,
    )?;
    check_range(at("timeout_ms"), collector.timeout_ms, 1, 60_000)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339(1_795_392_000_123_456_789),
            "2026-11-23T00:00:00.123456Z"
        );
        assert_eq!(
            rfc3339(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(rfc3339(u64::MAX), "2554-07-21T23:34:33.709551Z");
    }

    #[test]
    fn masks_keys_whatever_their_case() {
        let mut value = serde_json::json!({
            "Password": "a", "PASSWORD": "b", "nested": [{"pAsSwOrD": "c", "Пароль": "d"}],
            "user": "u"
        });
        mask(&mut value, &["password".to_owned(), "Пароль".to_owned()]);
        assert_eq!(
            value,
            serde_json::json!({
                "Password": "***", "PASSWORD": "***", "nested": [{"pAsSwOrD": "***", "Пароль": "***"}],
                "user": "u"
            })
        );
    }
}
