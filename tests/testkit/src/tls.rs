//! TLS for the testkit's servers: a throw-away CA per server, a certificate for
//! 127.0.0.1/localhost signed by it, and one HTTPS accept loop shared by the API server and
//! the Git server. Clients trust the CA PEM (kubeconfig `certificate-authority-data`, git's
//! `http.sslCAInfo`), so nothing runs with verification turned off.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// Installs ring as rustls' process-wide crypto provider; a second install (by another server
/// or by kube's client) is fine, hence the ignored result.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A certificate authority and one server certificate (127.0.0.1, ::1, localhost) it signed.
pub struct TestCa {
    ca_pem: String,
    server_cert_der: CertificateDer<'static>,
    server_key_der: Vec<u8>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key stays out of debug output.
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// Generates a fresh CA and server certificate (ECDSA P-256, valid for the default span).
    pub fn generate() -> anyhow::Result<TestCa> {
        let ca_key = KeyPair::generate().context("generating the CA key")?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        // A name of its own: OpenSSL stores (libgit2's is one per process) index CAs by
        // subject, so CAs sharing a name would shadow each other.
        let ca_name = format!("testkit CA {}", uuid::Uuid::new_v4().simple());
        ca_params.distinguished_name = name(&ca_name);
        let ca_cert = ca_params.self_signed(&ca_key).context("signing the CA")?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().context("generating the server key")?;
        let mut server_params = CertificateParams::new(vec!["localhost".to_string()])?;
        server_params.subject_alt_names.extend([
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ]);
        server_params.distinguished_name = name("localhost");
        server_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .context("signing the server certificate")?;

        Ok(TestCa {
            ca_pem: ca_cert.pem(),
            server_cert_der: server_cert.der().clone(),
            server_key_der: server_key.serialize_der(),
        })
    }

    /// The CA certificate in PEM, for clients to trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A rustls server configuration presenting the server certificate, offering HTTP/2 and
    /// HTTP/1.1 through ALPN.
    pub fn server_config(&self) -> anyhow::Result<Arc<ServerConfig>> {
        install_crypto_provider();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone()));
        let mut config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![self.server_cert_der.clone()], key)
            .context("building the TLS server configuration")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Serves `router` over TLS on `listener` until `shutdown` resolves; then stops accepting and
/// ends every open connection (long watches included), so a dropped test server frees its
/// clients at once.
pub async fn serve_https(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let acceptor = acceptor.clone();
                // The peer's address for handlers that tell connections apart.
                let router = router.clone().layer(axum::Extension(ConnectInfo(peer)));
                let service = TowerToHyperService::new(router);
                connections.spawn(async move {
                    let Ok(tls_stream) = acceptor.accept(stream).await else {
                        tracing::debug!(%peer, "TLS handshake failed");
                        return;
                    };
                    let builder = auto::Builder::new(TokioExecutor::new());
                    if let Err(error) = builder
                        .serve_connection_with_upgrades(TokioIo::new(tls_stream), service)
                        .await
                    {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                });
            }
            // Reap finished connections so the set does not grow for the server's lifetime.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_ca_and_a_usable_server_config() {
        let ca = TestCa::generate().unwrap();
        assert!(ca.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let config = ca.server_config().unwrap();
        assert!(config.alpn_protocols.contains(&b"http/1.1".to_vec()));
    }
}
