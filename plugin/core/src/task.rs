//! Per-task credentials: a short-lived transaction token, bound to the agent that presents it.

use std::collections::BTreeSet;
use std::rc::Rc;

use regorus::Value;

use crate::config::TaskBinding;
use crate::identity::cache::TokenCache;
use crate::identity::{TokenError, TokenVerifier, VerifiedToken};

pub struct TaskSettings {
    pub header: String,
    pub verifier: TokenVerifier,
    pub binding: TaskBinding,
    pub forward: bool,
    pub cache: TokenCache<VerifiedTask>,
}

/// A verified task credential and its pre-built `input.task`.
pub struct VerifiedTask {
    pub token: VerifiedToken,
    pub txn: String,
    pub scopes: Option<BTreeSet<String>>,
    pub bound_to: Option<String>,
    pub input: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    #[error("task credential: {0}")]
    Invalid(TokenError),
    #[error("route `{route}` requires a task credential in header `{header}`")]
    Required { route: String, header: String },
    #[error("task credential is bound to `{bound}`, not to the caller `{caller}`")]
    WrongAgent { bound: String, caller: String },
    #[error("task credential names no workload in `{0}`")]
    Unbound(&'static str),
}

impl TaskSettings {
    /// Verifies the task credential in `value` (the header's value), using the cache.
    pub fn verify(&mut self, value: &str, now: u64) -> Result<(Rc<VerifiedTask>, bool), TaskError> {
        if let Some(hit) = self.cache.get(value, now) {
            self.verifier
                .check_keys_fresh(&hit.token.issuer, now)
                .map_err(TaskError::Invalid)?;
            return Ok((hit, true));
        }
        let token = self
            .verifier
            .verify(value, now)
            .map_err(TaskError::Invalid)?;
        let claim = match self.binding {
            TaskBinding::ReqWl => "req_wl",
            TaskBinding::Sub => "sub",
        };
        let bound_to = token
            .claims
            .get(claim)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        let txn = token
            .claims
            .get("txn")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let scopes = crate::delegation::scopes(token.claims.get("scope"));
        let input = crate::input::task(&token, &txn, scopes.as_ref(), bound_to.as_deref());
        let skew = self.verifier.skew_seconds();
        let valid_from = token.not_before.unwrap_or(0).saturating_sub(skew);
        let valid_until = token.expires_at.saturating_add(skew);
        let verified = Rc::new(VerifiedTask {
            token,
            txn,
            scopes,
            bound_to,
            input,
        });
        self.cache
            .insert(value, valid_from, valid_until, Rc::clone(&verified));
        Ok((verified, false))
    }

    pub fn check_binding(&self, task: &VerifiedTask, caller: &str) -> Result<(), TaskError> {
        let claim = match self.binding {
            TaskBinding::ReqWl => "req_wl",
            TaskBinding::Sub => "sub",
        };
        match &task.bound_to {
            None => Err(TaskError::Unbound(claim)),
            Some(bound) if bound != caller => Err(TaskError::WrongAgent {
                bound: bound.chars().take(96).collect(),
                caller: caller.to_owned(),
            }),
            Some(_) => Ok(()),
        }
    }
}
