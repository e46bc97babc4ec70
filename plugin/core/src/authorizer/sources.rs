//! What the control plane feeds in while the authorizer runs: verified bundles (the active
//! policy and its revision), revocation feed documents (and how stale they may get), and
//! issuers' fetched key sets.

use super::{Authorizer, Refusal};
use crate::bundle::BundleError;
use crate::compile::{self, IssuerRole};
use crate::config::{RawAudit, RawBundle, RawFeed, RawKeySource, RawPolicy};
use crate::decision::Outcome;
use crate::identity::key_set::{KeySetChange, KeySetError};
use crate::identity::TokenVerifier;
use crate::policy::Policy;
use crate::revocation::FeedError;

/// One issuer whose keys are fetched: which verifier (workload, task or approval issuers) and
/// its place there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySetId {
    pub role: IssuerRole,
    pub index: usize,
}

impl KeySetId {
    /// The issuer's configuration field, such as `task.issuers[0]`.
    pub fn field(&self) -> String {
        let list = match self.role {
            IssuerRole::Workload => "issuers",
            IssuerRole::Task => "task.issuers",
            IssuerRole::Approval => "approval.issuers",
        };
        format!("{list}[{}]", self.index)
    }
}

impl Authorizer {
    fn verifier_of(&self, role: IssuerRole) -> Option<&TokenVerifier> {
        match role {
            IssuerRole::Workload => Some(&self.verifier),
            IssuerRole::Task => self.task.as_ref().map(|t| &t.verifier),
            IssuerRole::Approval => self.approval.as_ref().map(|a| &a.verifier),
        }
    }

    fn verifier_of_mut(&mut self, role: IssuerRole) -> Option<&mut TokenVerifier> {
        match role {
            IssuerRole::Workload => Some(&mut self.verifier),
            IssuerRole::Task => self.task.as_mut().map(|t| &mut t.verifier),
            IssuerRole::Approval => self.approval.as_mut().map(|a| &mut a.verifier),
        }
    }

    /// Every issuer whose keys the host must fetch: its id, name and source.
    pub fn key_sources(&self) -> Vec<(KeySetId, &str, &RawKeySource)> {
        let mut sources = Vec::new();
        for role in [IssuerRole::Workload, IssuerRole::Task, IssuerRole::Approval] {
            if let Some(verifier) = self.verifier_of(role) {
                sources.extend(
                    verifier
                        .remote_sources()
                        .map(|(index, issuer, source)| (KeySetId { role, index }, issuer, source)),
                );
            }
        }
        sources
    }

    /// Replaces an issuer's keys with a set fetched at `now` (`None`: the same document as
    /// before, nothing changed). Tokens verified with the old keys are verified again: a
    /// removed key's tokens are refused from now on.
    pub fn apply_key_set(
        &mut self,
        id: KeySetId,
        body: &[u8],
        now: u64,
    ) -> Result<Option<KeySetChange>, KeySetError> {
        let verifier = self
            .verifier_of_mut(id.role)
            .ok_or_else(|| KeySetError::Malformed("no such issuer".to_owned()))?;
        let change = verifier.replace_keys(id.index, body, now)?;
        if change.is_some() {
            self.cache.clear();
            if let Some(task) = &mut self.task {
                task.cache.clear();
            }
        }
        Ok(change)
    }

    /// The source answered that an issuer's keys have not changed.
    pub fn confirm_key_set(&mut self, id: KeySetId, now: u64) {
        if let Some(verifier) = self.verifier_of_mut(id.role) {
            verifier.confirm_keys(id.index, now);
        }
    }

    /// Whether a token named a key id the issuer lacks since its keys were last fetched.
    pub fn key_refresh_wanted(&self, id: KeySetId) -> bool {
        self.verifier_of(id.role)
            .is_some_and(|v| v.refresh_wanted(id.index))
    }

    /// The revocation feed the host must poll, if any.
    pub fn revocation_feed(&self) -> Option<&RawFeed> {
        self.feed.as_ref()
    }

    /// Applies a revocation feed document fetched by the host at `now` (unix seconds).
    pub fn apply_revocation_feed(&mut self, body: &[u8], now: u64) -> Result<u64, FeedError> {
        self.revocations.apply(body, now)
    }

    /// The bundle the host must fetch, if any.
    pub fn bundle_source(&self) -> Option<&RawBundle> {
        self.bundle.as_ref().map(|b| &b.source)
    }

    /// Verifies, compiles and activates a fetched bundle at `now` (unix seconds). Either the
    /// whole bundle becomes active (policy, data, agent inventory, revision) or nothing
    /// changes and the last good policy stays.
    pub fn activate_bundle(&mut self, bytes: &[u8], now: u64) -> Result<String, BundleError> {
        let settings = self
            .bundle
            .as_ref()
            .ok_or_else(|| BundleError::Fetch("no bundle is configured".to_owned()))?;
        let opened = settings.open(bytes, now)?;
        let source = &self.policy_source;
        // A bundle signed before the active one is a rollback (a replayed or stale copy):
        // refused, and the active policy stays.
        if let Some(active) = source.issued_at.filter(|active| opened.issued_at < *active) {
            return Err(BundleError::Older {
                offered: opened.issued_at,
                active,
            });
        }
        let raw = RawPolicy {
            entrypoint: source.entrypoint.to_string(),
            modules: opened.modules,
            data: opened.data,
            max_instructions: source.max_instructions,
        };
        let inventory = compile::inventory(&raw.data, source.inventory.as_deref())
            .map_err(|err| BundleError::Policy(err.to_string()))?;
        let policy = Policy::compile(&raw).map_err(|err| BundleError::Policy(err.to_string()))?;
        self.policy = Some(policy);
        self.inventory = inventory;
        self.policy_source.kind = "bundle";
        self.policy_source.revision = opened.revision.as_str().into();
        self.policy_source.activated_at = Some(now);
        self.policy_source.issued_at = Some(opened.issued_at);
        Ok(opened.revision)
    }

    /// The revision of the policy deciding now: the bundle's, or a digest of the inline policy.
    pub fn policy_revision(&self) -> &str {
        &self.policy_source.revision
    }

    /// Unix seconds when the active bundle was activated; `None` before the first.
    pub fn bundle_activated_at(&self) -> Option<u64> {
        self.policy_source.activated_at
    }

    /// Where audit events go; the host implements the outputs.
    pub fn audit_settings(&self) -> &RawAudit {
        &self.audit
    }

    pub fn revocation_version(&self) -> Option<u64> {
        self.revocations.version
    }

    /// Unix seconds of the last successful feed update.
    pub fn revocation_updated_at(&self) -> Option<u64> {
        self.revocations.updated_at
    }

    /// Fails closed while a required feed is staler than its bound; a route may say whether
    /// it requires the feed, overriding `fail_closed`.
    pub(super) fn check_feed(&self, now: u64, route_requires: Option<bool>) -> Result<(), Refusal> {
        let Some(feed) = self
            .feed
            .as_ref()
            .filter(|f| route_requires.unwrap_or(f.fail_closed))
        else {
            return Ok(());
        };
        let since = self
            .revocations
            .updated_at
            .or(self.first_decision_at)
            .unwrap_or(now);
        let age = now.saturating_sub(since);
        if age > feed.max_staleness_seconds {
            let last = match self.revocations.updated_at {
                Some(_) => format!("last update {age}s ago"),
                None => format!("no update in {age}s"),
            };
            return Err(Refusal(
                Outcome::Unavailable,
                format!(
                    "revocation feed is stale ({last}, limit {}s)",
                    feed.max_staleness_seconds
                ),
            ));
        }
        Ok(())
    }
}
