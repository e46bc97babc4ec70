//! What each host can do for the core, as data. A configuration field a host cannot honour is
//! refused when the configuration is loaded there, naming the field and the host: never
//! accepted and then silently ignored (a collector nobody sends to, a feed nobody polls).

use crate::authorizer::Authorizer;
use crate::error::ConfigError;

/// The facilities a host gives the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// How messages name the host.
    pub host: &'static str,
    /// Outbound HTTP calls on a timer: the policy bundle, the revocation feed, audit export.
    pub control_plane: bool,
    /// Per-request filter state the access log can read (`audit.filter_state`).
    pub filter_state: bool,
    /// The mTLS peer certificate's URI SAN (`connection.peer_uri_san`).
    pub peer_certificate: bool,
    /// A verifier in front of Bridle that proves it checked the workload token
    /// (`identity.host_verification`).
    pub host_verified_tokens: bool,
    /// Envoy dynamic metadata (a `proof_property` under `metadata`).
    pub dynamic_metadata: bool,
}

impl Capabilities {
    /// Envoy (proxy-wasm on V8): everything.
    pub const ENVOY: Capabilities = Capabilities {
        host: "Envoy",
        control_plane: true,
        filter_state: true,
        peer_certificate: true,
        host_verified_tokens: true,
        dynamic_metadata: true,
    };

    /// Kong's ngx_wasm_module 0.6: http calls and timers, host properties, no filter state,
    /// no Envoy connection or metadata attributes.
    pub const KONG: Capabilities = Capabilities {
        host: "ngx_wasm_module, Kong",
        control_plane: true,
        filter_state: false,
        peer_certificate: false,
        host_verified_tokens: true,
        dynamic_metadata: false,
    };

    /// Edge workers and browsers (the wasm-bindgen build): the caller hands over each request;
    /// nothing runs between requests and nothing verifies tokens in front of Bridle.
    pub const EDGE: Capabilities = Capabilities {
        host: "edge runtimes and browsers",
        control_plane: false,
        filter_state: false,
        peer_certificate: true,
        host_verified_tokens: false,
        dynamic_metadata: false,
    };

    /// The first configured field this host cannot honour.
    pub fn check(&self, authorizer: &Authorizer) -> Result<(), ConfigError> {
        let settings = authorizer.settings();
        let audit = authorizer.audit_settings();
        let needs: [(bool, bool, &str, &str); 7] = [
            (
                authorizer.bundle_source().is_some(),
                self.control_plane,
                "bundle",
                "outbound calls on a timer to fetch the policy bundle",
            ),
            (
                authorizer.revocation_feed().is_some(),
                self.control_plane,
                "revocation.feed",
                "outbound calls on a timer to poll the revocation feed",
            ),
            (
                audit.collector.is_some(),
                self.control_plane,
                "audit.collector",
                "outbound calls on a timer to export audit events",
            ),
            (
                audit.filter_state,
                self.filter_state,
                "audit.filter_state",
                "host filter state",
            ),
            (
                settings.peer_uri_san,
                self.peer_certificate,
                "connection.peer_uri_san",
                "the mTLS peer certificate's URI SAN",
            ),
            (
                settings.host_payload_header.is_some(),
                self.host_verified_tokens,
                "identity.host_verification",
                "a verifier in front of Bridle that checks tokens (Bridle verifies \
                 signatures itself without it)",
            ),
            (
                settings
                    .host_proof_property
                    .as_ref()
                    .is_some_and(|path| path.first().map(String::as_str) == Some("metadata")),
                self.dynamic_metadata,
                "identity.host_verification.proof_property",
                "Envoy dynamic metadata",
            ),
        ];
        if let Some((_, _, field, what)) = needs.iter().find(|(set, can, _, _)| *set && !*can) {
            return Err(ConfigError::Unsupported {
                field: (*field).to_owned(),
                needs: (*what).to_owned(),
                host: self.host,
            });
        }
        if self.control_plane {
            return Ok(());
        }
        match authorizer.key_sources().first() {
            Some((id, _, _)) => Err(ConfigError::Unsupported {
                field: format!("{}.jwks_source", id.field()),
                needs: "outbound calls on a timer to fetch the issuer's keys".to_owned(),
                host: self.host,
            }),
            None => Ok(()),
        }
    }
}
