//! The caller's credential: taken from the request, verified (here, by the host, or by a
//! runtime's native signature check) and cached with what every decision needs of it.

use std::rc::Rc;

use super::{Authorizer, CachedIdentity};
use crate::audit::{AgentRef, Shared};
use crate::credentials;
use crate::decision::Decision;
use crate::host::Host;
use crate::identity::native::{SignatureJob, SignatureVerdict};
use crate::identity::verify::token_digest;
use crate::identity::TokenError;
use crate::input;
use crate::request::RequestView;

/// Native signature checks in flight at once (a browser or worker isolate's concurrency).
const MAX_SIGNATURE_JOBS: usize = 256;

impl Authorizer {
    /// For runtimes that verify signatures natively (Web Crypto): the signature check this
    /// request's workload token needs, with the key and algorithm Bridle chose. `None` when
    /// none is needed or the token is refused anyway: then decide as usual.
    pub fn signature_job(&mut self, request: &RequestView, now: u64) -> Option<SignatureJob> {
        if self.settings.host_payload_header.is_some() {
            return None;
        }
        let token = self.extract_token(request).ok()?;
        if self.cache.get(token, now).is_some() {
            return None;
        }
        let job = self.verifier.signature_job(token, now).ok()?;
        if self.signature_jobs.len() >= MAX_SIGNATURE_JOBS {
            self.signature_jobs.clear();
        }
        self.signature_jobs.insert(token_digest(token));
        Some(job)
    }

    /// Decides with the runtime's verdict on a signature [`Authorizer::signature_job`] asked
    /// for. A verdict for another token, or one never asked for, is ignored: the signature is
    /// then verified here.
    pub fn decide_with_signature(
        &mut self,
        request: &RequestView,
        valid: bool,
        host: &mut dyn Host,
    ) -> Decision {
        self.verdict = self
            .extract_token(request)
            .ok()
            .map(token_digest)
            .filter(|digest| self.signature_jobs.remove(digest))
            .map(|token_digest| SignatureVerdict {
                token_digest,
                valid,
            });
        let decision = self.decide(request, host);
        self.verdict = None;
        decision
    }

    pub(super) fn authenticate(
        &mut self,
        request: &RequestView,
        now: u64,
        cache_hit: &mut Option<bool>,
    ) -> Result<Rc<CachedIdentity>, TokenError> {
        let token = self.extract_token(request)?;
        let by_host = self.settings.host_payload_header.as_deref();
        if let Some(payload_header) = by_host {
            // Checked on every request, cached token or not: the cache knows the token is
            // good, not that the host verified it this time.
            if !request.host_verified {
                return Err(TokenError::NotVerifiedByHost);
            }
            let payload = credentials::single_header(request, payload_header)?
                .ok_or(TokenError::NotVerifiedByHost)?;
            let segment = token.split('.').nth(1).unwrap_or_default();
            if payload.trim().trim_end_matches('=') != segment {
                return Err(TokenError::HostPayloadMismatch);
            }
        }
        if let Some(hit) = self.cache.get(token, now) {
            self.verifier.check_keys_fresh(&hit.token.issuer, now)?;
            *cache_hit = Some(true);
            return Ok(hit);
        }
        *cache_hit = Some(false);
        let verdict = self
            .verdict
            .take()
            .filter(|v| v.token_digest == token_digest(token));
        let verified = match (by_host, verdict) {
            (Some(_), _) => self.verifier.verify_signed_by_host(token, now)?,
            (None, Some(verdict)) if verdict.valid => {
                self.verifier.verify_signed_by_host(token, now)?
            }
            (None, Some(_)) => return Err(TokenError::BadSignature),
            (None, None) => self.verifier.verify(token, now)?,
        };
        let skew = self.verifier.skew_seconds();
        let valid_from = verified.not_before.unwrap_or(0).saturating_sub(skew);
        let valid_until = verified.expires_at.saturating_add(skew);
        let subject = verified.actor.as_deref().or(verified.subject.as_deref());
        let caller: Shared = verified
            .spiffe
            .as_ref()
            .map(|s| s.id.as_str())
            .or(subject)
            .unwrap_or_default()
            .into();
        let agent = AgentRef {
            issuer: verified.issuer.as_str().into(),
            subject: subject.map(Shared::from),
            principal: verified
                .actor
                .as_ref()
                .and(verified.subject.as_deref())
                .map(Shared::from),
            spiffe_id: verified.spiffe.as_ref().map(|s| s.id.as_str().into()),
            owner: None,
            token_digest: verified.digest.as_str().into(),
            jti: verified.jti.as_deref().map(Shared::from),
            cache_hit: false,
        };
        let cached = Rc::new(CachedIdentity {
            input: input::identity(&verified),
            token: verified,
            agent,
            caller,
        });
        self.cache
            .insert(token, valid_from, valid_until, Rc::clone(&cached));
        Ok(cached)
    }

    pub(super) fn extract_token<'r>(
        &self,
        request: &'r RequestView,
    ) -> Result<&'r str, TokenError> {
        credentials::token(
            request,
            &self.settings.credential_header,
            &self.settings.scheme,
            self.verifier.max_token_bytes(),
        )
    }
}
