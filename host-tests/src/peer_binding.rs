//! One scenario for two hosts: a delegated credential (RFC 8693, `act`) is bound to the mTLS
//! peer presenting it. With `connection.peer_uri_san: true` and a peer URI SAN reported by
//! the host, the credential's current actor (`act.sub`, the caller) must be that peer, else
//! 401; with no SAN there is nothing to bind to. A credential without `act` is not bound to
//! the peer (mTLS-bound tokens are another feature).
//!
//! Run through the compiled `.wasm` in the harness (`harness_delegated_credentials.rs`, the SAN
//! set as a host property) and in a real Envoy whose listener requires client certificates
//! (`envoy_delegated_credentials.rs`, the SAN in the certificate the client presents).

use serde_json::{json, Value};

use crate::config::{inline_policy, spiffe_subjects_entry};
use crate::fixtures::{DelegatedCase, DelegatedExpect, ALICE, DELEGATING_STS, DEPLOY, RESEARCH};
use crate::tokens::{Alg, Claims, TestIssuer};
use crate::{ConfigBuilder, Error};

/// Allows everyone; tells the upstream which principal the policy saw ([`SEEN_HEADER`]).
const POLICY: &str = r#"package t
import rego.v1

decision := {"allow": true, "reasons": [], "headers": {"x-policy-saw": json.marshal({"principal": object.get(input.identity, "principal", null)})}}
"#;

/// A request of the scenario: a [`DelegatedCase`] presented by the mTLS peer whose
/// certificate's URI SAN is `peer` (`None`: the host reports none).
#[derive(Debug, Clone)]
pub struct PeerCase {
    pub peer: Option<&'static str>,
    pub case: DelegatedCase,
}

/// The issuer and configuration of the scenario.
pub struct PeerBinding {
    /// [`DELEGATING_STS`] as an OIDC issuer allowed to assert SPIFFE IDs of the demo trust
    /// domain.
    pub issuer: TestIssuer,
}

impl PeerBinding {
    pub fn new() -> Result<Self, Error> {
        Ok(Self {
            issuer: TestIssuer::new(DELEGATING_STS, Alg::Es256)?.with_profile("oidc"),
        })
    }

    /// Bridle's configuration: the issuer, an allow-all policy, `connection.peer_uri_san`.
    pub fn config(&self) -> Result<Value, Error> {
        let mut config = ConfigBuilder::with_policy(inline_policy(
            "data.t.decision",
            &[("t.rego", POLICY)],
            json!({}),
        ))
        .set("connection", json!({"peer_uri_san": true}))
        .build();
        if let Some(config) = config.as_object_mut() {
            config.insert(
                "issuers".into(),
                json!([spiffe_subjects_entry(&self.issuer)?]),
            );
        }
        Ok(config)
    }

    /// A credential for [`ALICE`] with `actor` as its current actor.
    pub fn delegated(&self, actor: &str) -> Result<String, Error> {
        self.issuer
            .mint(&Claims::new(ALICE).claim("act", json!({"sub": actor})))
    }

    /// Every case, in the order to run them.
    pub fn cases(&self) -> Result<Vec<PeerCase>, Error> {
        let forwarded = |agent: &str, principal: Option<&str>| DelegatedExpect::Forwarded {
            agent: agent.to_owned(),
            saw: json!({ "principal": principal }),
        };
        let refused = |actor: &str, peer: &str| DelegatedExpect::Refused {
            status: 401,
            error: "unauthenticated",
            reason: format!(
                "the delegated credential's current actor `{actor}` is not the mTLS peer \
                 `{peer}` presenting it"
            ),
        };
        let table = [
            (
                "delegated, presented by its actor",
                self.delegated(RESEARCH)?,
                Some(RESEARCH),
                forwarded(RESEARCH, Some(ALICE)),
                (RESEARCH, Some(ALICE)),
            ),
            (
                "delegated, presented by another workload",
                self.delegated(RESEARCH)?,
                Some(DEPLOY),
                refused(RESEARCH, DEPLOY),
                (RESEARCH, Some(ALICE)),
            ),
            (
                "delegated to the other agent, presented by the first",
                self.delegated(DEPLOY)?,
                Some(RESEARCH),
                refused(DEPLOY, RESEARCH),
                (DEPLOY, Some(ALICE)),
            ),
            (
                "delegated, no peer URI SAN",
                self.delegated(RESEARCH)?,
                None,
                forwarded(RESEARCH, Some(ALICE)),
                (RESEARCH, Some(ALICE)),
            ),
            // Not bound: only a delegated credential names who must present it.
            (
                "not delegated, presented by another workload",
                self.issuer.token_for(RESEARCH)?,
                Some(DEPLOY),
                forwarded(RESEARCH, None),
                (RESEARCH, None),
            ),
        ];
        Ok(table
            .into_iter()
            .map(
                |(name, token, peer, expect, (subject, principal))| PeerCase {
                    peer,
                    case: DelegatedCase {
                        name,
                        path: "/api/reports",
                        headers: vec![("authorization", format!("Bearer {token}"))],
                        expect,
                        audited: Some((subject.to_owned(), principal)),
                    },
                },
            )
            .collect())
    }
}
