//! Revocation: tasks (`txn`), tokens (`jti`) and whole agents (SPIFFE ID or subject), from the
//! configuration and from a versioned feed the host polls.

use std::collections::HashSet;

use serde::Deserialize;

use crate::error::{check_endpoint, check_range, ConfigError};

/// What is revoked now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    pub txn: HashSet<String>,
    pub jti: HashSet<String>,
    pub agents: HashSet<String>,
}

/// The feed document: `{"version": 7, "txn": [...], "jti": [...], "agents": [...]}`. Each
/// version replaces the previous list whole.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedDocument {
    pub version: u64,
    #[serde(default)]
    pub txn: Vec<String>,
    #[serde(default)]
    pub jti: Vec<String>,
    #[serde(default)]
    pub agents: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("revocation feed is not a valid document: {0}")]
    Invalid(String),
    #[error("revocation feed version {got} is older than the active version {active}")]
    Stale { got: u64, active: u64 },
    #[error("revocation feed lists more than {0} entries")]
    TooLarge(usize),
}

pub const MAX_FEED_ENTRIES: usize = 100_000;

/// Revocations from the configuration plus the last feed version applied.
#[derive(Debug, Default)]
pub struct RevocationState {
    inline: Revocations,
    feed: Revocations,
    /// Version of the active feed document; `None` until one was applied.
    pub version: Option<u64>,
    /// Unix seconds of the last successful feed update.
    pub updated_at: Option<u64>,
}

impl RevocationState {
    pub fn new(inline: Revocations) -> Self {
        Self {
            inline,
            ..Self::default()
        }
    }

    /// Applies a feed document; older versions are refused, the same version refreshes the
    /// update time (the feed is alive) without changing the lists.
    pub fn apply(&mut self, body: &[u8], now: u64) -> Result<u64, FeedError> {
        let doc: FeedDocument =
            crate::json_strict::from_object(body).map_err(FeedError::Invalid)?;
        if doc.txn.len() + doc.jti.len() + doc.agents.len() > MAX_FEED_ENTRIES {
            return Err(FeedError::TooLarge(MAX_FEED_ENTRIES));
        }
        if let Some(active) = self.version {
            if doc.version < active {
                return Err(FeedError::Stale {
                    got: doc.version,
                    active,
                });
            }
        }
        if self.version != Some(doc.version) {
            self.feed = Revocations {
                txn: doc.txn.into_iter().collect(),
                jti: doc.jti.into_iter().collect(),
                agents: doc.agents.into_iter().collect(),
            };
            self.version = Some(doc.version);
        }
        self.updated_at = Some(now);
        Ok(doc.version)
    }

    pub fn txn_revoked(&self, txn: &str) -> bool {
        self.inline.txn.contains(txn) || self.feed.txn.contains(txn)
    }

    pub fn jti_revoked(&self, jti: &str) -> bool {
        self.inline.jti.contains(jti) || self.feed.jti.contains(jti)
    }

    pub fn agent_revoked(&self, agent: &str) -> bool {
        self.inline.agents.contains(agent) || self.feed.agents.contains(agent)
    }
}

/// Checks `revocation.feed`: where it is fetched from, how often, and how stale it may get.
pub fn check_feed(feed: &crate::config::RawFeed) -> Result<(), ConfigError> {
    let at = "revocation.feed";
    check_endpoint(at, &feed.cluster, &feed.path)?;
    check_range(format!("{at}.poll_seconds"), feed.poll_seconds, 1, 3600)?;
    check_range(format!("{at}.timeout_ms"), feed.timeout_ms, 1, 60_000)?;
    if feed.max_staleness_seconds < feed.poll_seconds {
        return Err(ConfigError::invalid(
            "revocation.feed.max_staleness_seconds",
            "must be at least poll_seconds",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_versions_replace_and_never_go_back() {
        let mut inline = Revocations::default();
        inline.agents.insert("spiffe://d/agent/x".into());
        let mut state = RevocationState::new(inline);
        assert!(state.agent_revoked("spiffe://d/agent/x"));
        assert_eq!(state.apply(br#"{"version": 2, "txn": ["t1"]}"#, 100), Ok(2));
        assert!(state.txn_revoked("t1"));
        assert_eq!(state.apply(br#"{"version": 3, "jti": ["j1"]}"#, 110), Ok(3));
        assert!(!state.txn_revoked("t1") && state.jti_revoked("j1"));
        assert_eq!(
            state.apply(br#"{"version": 2, "txn": ["t1"]}"#, 120),
            Err(FeedError::Stale { got: 2, active: 3 })
        );
        assert_eq!(state.updated_at, Some(110));
        assert_eq!(state.apply(br#"{"version": 3}"#, 130), Ok(3));
        assert!(
            state.jti_revoked("j1"),
            "the same version only refreshes liveness"
        );
        assert_eq!(state.updated_at, Some(130));
        assert!(matches!(state.apply(b"{", 140), Err(FeedError::Invalid(_))));
        assert!(matches!(
            state.apply(br#"{"version": 4, "extra": 1}"#, 140),
            Err(FeedError::Invalid(_))
        ));
        // Only the object form: serde's derive would read an array as the fields in order.
        for bad in [
            &br#"[4, [], ["j1"], []]"#[..],
            br#"[4]"#,
            br#"{"version": 4, "jti": [], "jti": ["j1"]}"#,
        ] {
            assert!(
                matches!(state.apply(bad, 150), Err(FeedError::Invalid(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(state.version, Some(3));
    }
}
