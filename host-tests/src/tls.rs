//! Mutual TLS for the Envoy fixture: a throwaway PKI made at test time, the listener's
//! [`DownstreamTls`] (client certificates required and checked against the test CA), and a
//! client that presents a certificate with a chosen URI SAN, which Envoy reports to the filter
//! as `connection.uri_san_peer_certificate`.
//!
//! Certificates and the client are `host-tests/tls/mtls.py` under `.venv/bin/python`: Python's
//! `cryptography` (pinned in `host-tests/corpus/requirements.txt`, installed by
//! `scripts/setup.sh`) and its `ssl` module, so no TLS stack is added to the workspace.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::envoy::{self, Request, Response};
use crate::{paths, Error};

/// The listener's TLS: its certificate, and the CA its clients' certificates must chain to.
#[derive(Debug, Clone)]
pub struct DownstreamTls {
    pub cert_chain: PathBuf,
    pub private_key: PathBuf,
    /// Client certificates are validated against this CA.
    pub client_ca: PathBuf,
    /// Refuse connections without a valid client certificate.
    pub require_client_certificate: bool,
}

impl DownstreamTls {
    /// Envoy's `transport_socket` for a listener filter chain (`DownstreamTlsContext`).
    pub fn transport_socket(&self) -> Value {
        let file = |path: &Path| json!({"filename": path.to_string_lossy()});
        json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "require_client_certificate": self.require_client_certificate,
                "common_tls_context": {
                    "tls_certificates": [{
                        "certificate_chain": file(&self.cert_chain),
                        "private_key": file(&self.private_key),
                    }],
                    "validation_context": {"trusted_ca": file(&self.client_ca)},
                },
            },
        })
    }
}

/// A test CA with a server certificate for `localhost`/127.0.0.1 and client certificates, in
/// a directory of its own that is removed when dropped (kept when a test panics).
#[derive(Debug)]
pub struct Pki {
    dir: PathBuf,
    /// Each client certificate's URI SAN (`None`: a certificate without one), by file stem.
    clients: Vec<(Option<String>, String)>,
}

/// Runs `mtls.py` with `args`, `input` on stdin; its stdout.
fn run(args: &[&str], input: &[u8]) -> Result<Vec<u8>, Error> {
    paths::run_venv_script("host-tests/tls/mtls.py", args, input)
}

impl Pki {
    /// A fresh CA, server certificate, and one client certificate per entry of `peers`: its
    /// URI SAN, or `None` for a certificate with no subject alternative name at all.
    pub fn generate(peers: &[Option<&str>]) -> Result<Self, Error> {
        let dir = envoy::fresh_dir("bridle-pki")?;
        let clients: Vec<(Option<String>, String)> = peers
            .iter()
            .enumerate()
            .map(|(i, peer)| (peer.map(str::to_owned), format!("client-{i}")))
            .collect();
        let spec = json!({"clients": clients
            .iter()
            .map(|(uri_san, name)| json!({"name": name, "uri_san": uri_san}))
            .collect::<Vec<_>>()});
        run(
            &["pki", &dir.to_string_lossy()],
            spec.to_string().as_bytes(),
        )?;
        Ok(Self { dir, clients })
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The CA certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }

    /// A listener that requires client certificates issued by this CA.
    pub fn downstream_tls(&self) -> DownstreamTls {
        DownstreamTls {
            cert_chain: self.path("server.pem"),
            private_key: self.path("server.key"),
            client_ca: self.ca(),
            require_client_certificate: true,
        }
    }

    /// A client presenting the certificate generated for `peer` (its URI SAN, or `None` for
    /// the one without).
    pub fn client(&self, peer: Option<&str>) -> Result<TlsClient, Error> {
        let (_, name) = self
            .clients
            .iter()
            .find(|(uri_san, _)| uri_san.as_deref() == peer)
            .ok_or_else(|| Error::Missing(format!("no client certificate for {peer:?}")))?;
        Ok(TlsClient {
            ca: self.ca(),
            identity: Some((
                self.path(&format!("{name}.pem")),
                self.path(&format!("{name}.key")),
            )),
        })
    }

    /// A client that trusts this CA and presents no certificate.
    pub fn anonymous_client(&self) -> TlsClient {
        TlsClient {
            ca: self.ca(),
            identity: None,
        }
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// An HTTPS client of 127.0.0.1 that verifies the server against the test CA (as
/// `localhost`) and presents a client certificate, if it has one.
#[derive(Debug, Clone)]
pub struct TlsClient {
    ca: PathBuf,
    /// Certificate and key files.
    identity: Option<(PathBuf, PathBuf)>,
}

impl TlsClient {
    /// Sends `request` to 127.0.0.1:`port` on a new connection and reads the whole response.
    /// A refused handshake or certificate is an error.
    pub fn send(&self, port: u16, request: &Request) -> Result<Response, Error> {
        let port = port.to_string();
        let ca = self.ca.to_string_lossy();
        let mut args = vec!["request", "--port", &port, "--ca", &ca];
        let identity = self
            .identity
            .as_ref()
            .map(|(cert, key)| (cert.to_string_lossy(), key.to_string_lossy()));
        if let Some((cert, key)) = &identity {
            args.extend(["--cert", cert, "--key", key]);
        }
        let raw = run(&args, &request.wire())?;
        envoy::read_response(raw.as_slice(), &request.method)
    }
}
