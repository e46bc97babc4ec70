//! Compiling a configuration into an [`Authorizer`]: every check of the identity, response,
//! task, approval, route, delegation, policy and control-plane blocks, naming the field.

use std::collections::BTreeSet;

use regorus::Value;

use super::{Authorizer, PolicySource, Settings};
use crate::approval::ApprovalSettings;
use crate::audit;
use crate::bundle::BundleSettings;
use crate::compile;
use crate::config::{RawConfig, RawPolicy};
use crate::error::ConfigError;
use crate::identity::cache::TokenCache;
use crate::identity::TokenVerifier;
use crate::policy::{valid_header_name, Policy};
use crate::revocation::{RevocationState, Revocations};
use crate::task::TaskSettings;

const MAX_CLOCK_SKEW_SECONDS: u64 = 300;
const MAX_TOKEN_BYTES_LIMIT: usize = 64 * 1024;
const MAX_DELEGATION_DEPTH: usize = 16;
/// A short digest naming an inline policy, so audit events of different configurations differ.
fn config_revision(policy: &RawPolicy) -> String {
    let mut hasher = hmac_sha256::Hash::new();
    for module in &policy.modules {
        hasher.update(module.name.as_bytes());
        hasher.update([0]);
        hasher.update(module.source.as_bytes());
        hasher.update([0]);
    }
    hasher.update(
        serde_json::Value::Object(policy.data.clone())
            .to_string()
            .as_bytes(),
    );
    let digest = hasher.finalize();
    format!(
        "sha256:{}",
        crate::hex::lower(digest.get(..8).unwrap_or_default())
    )
}

fn header_name(value: &str, field: &str) -> Result<String, ConfigError> {
    let name = value.to_ascii_lowercase();
    if valid_header_name(&name) {
        Ok(name)
    } else {
        Err(ConfigError::invalid(
            field,
            format!("`{value}` is not an HTTP header name"),
        ))
    }
}
impl Authorizer {
    pub fn from_config(raw: RawConfig, id_seed: u64) -> Result<Self, ConfigError> {
        let identity = &raw.identity;
        let header = header_name(&identity.header, "identity.header")?;
        if identity.scheme.contains(char::is_whitespace) {
            return Err(ConfigError::invalid(
                "identity.scheme",
                "must be one word, such as `Bearer`, or empty",
            ));
        }
        if identity.clock_skew_seconds > MAX_CLOCK_SKEW_SECONDS {
            return Err(ConfigError::invalid(
                "identity.clock_skew_seconds",
                format!("must be at most {MAX_CLOCK_SKEW_SECONDS}"),
            ));
        }
        if identity.max_token_bytes == 0 || identity.max_token_bytes > MAX_TOKEN_BYTES_LIMIT {
            return Err(ConfigError::invalid(
                "identity.max_token_bytes",
                format!("must be between 1 and {MAX_TOKEN_BYTES_LIMIT}"),
            ));
        }
        let decision_id_header = header_name(
            &raw.response.decision_id_header,
            "response.decision_id_header",
        )?;
        if raw.response.realm.contains(['"', '\\'])
            || raw.response.realm.chars().any(char::is_control)
        {
            return Err(ConfigError::invalid(
                "response.realm",
                "must not contain quotes, backslashes or control characters",
            ));
        }
        let reserved_prefix = raw.reserved_header_prefix.to_ascii_lowercase();
        if !valid_header_name(&reserved_prefix) {
            return Err(ConfigError::invalid(
                "reserved_header_prefix",
                format!(
                    "`{}` is not the start of an HTTP header name",
                    raw.reserved_header_prefix
                ),
            ));
        }
        let skew = identity.clock_skew_seconds;
        let host_verification = identity.host_verification.clone();
        let host_payload_header = match &host_verification {
            None => None,
            Some(host) => {
                if host.proof_property.is_empty()
                    || host.proof_property.iter().any(String::is_empty)
                {
                    return Err(ConfigError::invalid(
                        "identity.host_verification.proof_property",
                        "must be a non-empty property path without empty segments",
                    ));
                }
                let name = header_name(
                    &host.payload_header,
                    "identity.host_verification.payload_header",
                )?;
                if name == header {
                    return Err(ConfigError::invalid(
                        "identity.host_verification.payload_header",
                        "must differ from identity.header",
                    ));
                }
                Some(name)
            }
        };
        let issuers = compile::issuers(&raw.issuers, "issuers", compile::IssuerRole::Workload)?;
        let task = match &raw.task {
            None => None,
            Some(task) => {
                let task_header = header_name(&task.header, "task.header")?;
                if task_header == header {
                    return Err(ConfigError::invalid(
                        "task.header",
                        "must differ from identity.header",
                    ));
                }
                if task.max_lifetime_seconds == 0 || task.max_lifetime_seconds > 24 * 3600 {
                    return Err(ConfigError::invalid(
                        "task.max_lifetime_seconds",
                        "must be between 1 and 86400",
                    ));
                }
                let issuers =
                    compile::issuers(&task.issuers, "task.issuers", compile::IssuerRole::Task)?;
                Some(TaskSettings {
                    header: task_header,
                    verifier: TokenVerifier::new(issuers, skew, identity.max_token_bytes)
                        .with_max_lifetime(task.max_lifetime_seconds),
                    binding: task.binding,
                    forward: task.forward,
                    cache: TokenCache::new(identity.cache_entries),
                })
            }
        };
        let approval = match &raw.approval {
            None => None,
            Some(approval) => {
                let approval_header = header_name(&approval.header, "approval.header")?;
                if approval_header == header {
                    return Err(ConfigError::invalid(
                        "approval.header",
                        "must differ from identity.header",
                    ));
                }
                if approval.max_lifetime_seconds == 0 || approval.max_lifetime_seconds > 3600 {
                    return Err(ConfigError::invalid(
                        "approval.max_lifetime_seconds",
                        "must be between 1 and 3600",
                    ));
                }
                let issuers = compile::issuers(
                    &approval.issuers,
                    "approval.issuers",
                    compile::IssuerRole::Approval,
                )?;
                Some(ApprovalSettings {
                    header: approval_header,
                    verifier: TokenVerifier::new(issuers, skew, identity.max_token_bytes)
                        .with_max_lifetime(approval.max_lifetime_seconds),
                })
            }
        };
        let routes = compile::routes(&raw.routes)?;
        if task.is_none() {
            if let Some(index) = routes.iter().position(|r| r.require_task) {
                return Err(ConfigError::invalid(
                    format!("routes[{index}].require_task"),
                    "needs a `task` block that says how task credentials are verified",
                ));
            }
        }
        if raw.delegation.max_depth == 0 || raw.delegation.max_depth > MAX_DELEGATION_DEPTH {
            return Err(ConfigError::invalid(
                "delegation.max_depth",
                format!("must be between 1 and {MAX_DELEGATION_DEPTH}"),
            ));
        }
        let bundle = raw
            .bundle
            .as_ref()
            .map(BundleSettings::compile)
            .transpose()?;
        // With a bundle, an empty `policy.modules` means: refuse until the first bundle.
        let (policy, inventory) = if bundle.is_some() && raw.policy.modules.is_empty() {
            if raw.policy.max_instructions == 0 {
                return Err(ConfigError::invalid(
                    "policy.max_instructions",
                    "must be greater than 0",
                ));
            }
            (None, compile::Inventory::default())
        } else {
            let inventory =
                compile::inventory(&raw.policy.data, raw.delegation.inventory.as_deref())?;
            (Some(Policy::compile(&raw.policy)?), inventory)
        };
        let policy_source = PolicySource {
            entrypoint: raw.policy.entrypoint.as_str().into(),
            max_instructions: raw.policy.max_instructions,
            inventory: raw.delegation.inventory.clone(),
            kind: "config",
            revision: config_revision(&raw.policy).into(),
            activated_at: None,
            issued_at: None,
        };
        if let Some(collector) = &raw.audit.collector {
            audit::check_collector(collector)?;
        }
        let feed = raw.revocation.feed.clone();
        if let Some(feed) = &feed {
            crate::revocation::check_feed(feed)?;
        }
        let revocations = RevocationState::new(Revocations {
            txn: raw.revocation.txn.iter().cloned().collect(),
            jti: raw.revocation.jti.iter().cloned().collect(),
            agents: raw.revocation.agents.iter().cloned().collect(),
        });
        let settings = Settings {
            credential_header: header,
            scheme: identity.scheme.clone(),
            forward_credential: identity.forward_credential,
            decision_id_header,
            realm: raw.response.realm.clone(),
            peer_uri_san: raw.connection.peer_uri_san,
            host_proof_property: host_verification.as_ref().map(|h| h.proof_property.clone()),
            host_payload_header,
        };
        let mut hidden_headers = vec![settings.credential_header.clone()];
        hidden_headers.extend(settings.host_payload_header.clone());
        hidden_headers.extend(task.as_ref().map(|t| t.header.clone()));
        hidden_headers.extend(approval.as_ref().map(|a| a.header.clone()));
        Ok(Self {
            hidden_headers,
            identity_headers: (
                format!("{reserved_prefix}agent"),
                format!("{reserved_prefix}agent-owner"),
            ),
            reserved_prefix,
            verifier: TokenVerifier::new(issuers, skew, identity.max_token_bytes),
            cache: TokenCache::new(identity.cache_entries),
            task,
            approval,
            routes,
            mcp: compile::mcp(raw.mcp)?,
            max_delegation_depth: raw.delegation.max_depth,
            inventory,
            policy,
            policy_source,
            bundle,
            environment: Value::from(serde_json::Value::Object(raw.environment)),
            revocations,
            audit: raw.audit.clone(),
            dry_run: raw.dry_run,
            feed,
            first_decision_at: None,
            settings,
            id_prefix: format!("{id_seed:016x}"),
            next_id: 0,
            signature_jobs: BTreeSet::new(),
            verdict: None,
        })
    }
}
