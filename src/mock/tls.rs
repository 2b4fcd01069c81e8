//! The mock's HTTPS (`--tls-cert`, `--tls-key`): one rustls server configuration shared by
//! every shard; each accepted connection is wrapped before it is served.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// A server configuration from a PEM certificate chain (leaf first) and its PEM private key
/// (PKCS#8, PKCS#1 or SEC1); ALPN http/1.1, TLS 1.2 and 1.3.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| anyhow!("--tls-cert {}: cannot read: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            anyhow!(
                "--tls-cert {}: not a PEM certificate file: {e}",
                cert.display()
            )
        })?;
    if chain.is_empty() {
        bail!(
            "--tls-cert {}: no CERTIFICATE block in the file",
            cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        anyhow!(
            "--tls-key {}: no usable PEM private key: {e}",
            key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("the TLS provider supports no protocol version")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("--tls-cert/--tls-key: the key does not fit the certificate")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
