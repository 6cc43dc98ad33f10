//! HTTPS for the reference IdP: a private certificate authority made at run time ([`TestCa`]),
//! the server identity it signs ([`TlsIdentity`], for [`IdpConfig::tls`](crate::IdpConfig::tls)),
//! and the listener that terminates TLS in front of the server's router.
//!
//! Nothing here is for production: the CA's key lives in memory for the life of the process, and
//! its certificates are valid from 1975 to 4096 (rcgen's defaults), so tests never depend on the
//! clock.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::conn::{ConnHandle, KillSwitchListener, KillableStream};
use crate::server::IdpError;

/// How long a client may take over its TLS handshake before the listener moves on.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A private certificate authority, generated in memory: the root a client is given as its
/// `ca_file` ([`TestCa::ca_pem`]), and the signer of server certificates
/// ([`TestCa::server_identity`]).
pub struct TestCa {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A server certificate (PEM, leaf first) and its private key (PEM). `Debug` hides the key.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The certificate chain, PEM.
    pub cert_chain_pem: String,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").field("cert_chain_pem", &self.cert_chain_pem).finish_non_exhaustive()
    }
}

fn tls_error(error: impl std::fmt::Display) -> IdpError {
    IdpError::Tls(error.to_string())
}

impl TestCa {
    /// A new CA named `name` (its subject's common name), with a fresh P-256 key.
    pub fn generate(name: &str) -> Result<Self, IdpError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().map_err(tls_error)?;
        let certificate = params.self_signed(&key).map_err(tls_error)?;
        Ok(TestCa { ca_pem: certificate.pem(), issuer: Issuer::new(params, key) })
    }

    /// The CA certificate, PEM: what a client trusts (`ca_file`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A server certificate for `names` (DNS names or IP addresses), signed by this CA.
    pub fn server_identity(&self, names: &[&str]) -> Result<TlsIdentity, IdpError> {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).map_err(tls_error)?;
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, first.as_str());
        }
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(tls_error)?;
        let certificate = params.signed_by(&key, &self.issuer).map_err(tls_error)?;
        Ok(TlsIdentity { cert_chain_pem: certificate.pem(), key_pem: key.serialize_pem() })
    }

    /// A server certificate for this machine's loopback names: `localhost`, `127.0.0.1`, `::1`.
    pub fn loopback_identity(&self) -> Result<TlsIdentity, IdpError> {
        self.server_identity(&["localhost", "127.0.0.1", "::1"])
    }
}

/// A rustls acceptor for `identity` (ring, TLS 1.2 and 1.3, HTTP/1.1).
pub(crate) fn acceptor(identity: &TlsIdentity) -> Result<TlsAcceptor, IdpError> {
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(identity.cert_chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| IdpError::Tls("the certificate chain is not PEM".into()))?;
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
        .map_err(|_| IdpError::Tls("the private key is not PEM".into()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .map_err(tls_error)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// [`KillSwitchListener`] with TLS on top: a failed or slow handshake drops that connection only.
pub(crate) struct TlsListener {
    pub(crate) inner: KillSwitchListener,
    pub(crate) acceptor: TlsAcceptor,
}

impl Listener for TlsListener {
    type Io = TlsStream<KillableStream>;
    type Addr = ConnHandle;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, handle) = self.inner.accept().await;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await {
                Ok(Ok(tls)) => return (tls, handle),
                Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}
