//! TLS for `https://` targets: one rustls client configuration built before the run (roots,
//! ALPN, verification) and shared by every shard and control request, plus the texts that say
//! why a handshake failed.
//!
//! Roots follow curl: the system store by default, `--ca-cert PATH` replaces it, `--insecure`
//! verifies nothing (with a warning). The crypto provider is rustls's `ring` (no cmake or
//! aws-lc C build on a fresh machine).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How the user asked the server to be trusted (`--ca-cert`, `--insecure`).
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// PEM file of one or more CA certificates: the only roots trusted (curl's `--cacert`).
    pub ca_cert: Option<PathBuf>,
    /// Skip certificate verification altogether.
    pub insecure: bool,
}

/// What a connection to an `https://` target needs: the name to send (SNI) and verify, and
/// the shared client configuration.
#[derive(Clone, Debug)]
pub struct TlsTarget {
    pub server_name: ServerName<'static>,
    pub config: Arc<ClientConfig>,
}

impl TlsTarget {
    /// For `host` as written in the URL (an IPv6 address in brackets or not).
    pub fn new(host: &str, opts: &TlsOptions) -> anyhow::Result<TlsTarget> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(bare.to_string())
            .map_err(|e| anyhow::anyhow!("{host} is not a valid TLS server name: {e}"))?;
        Ok(TlsTarget {
            server_name,
            config: client_config(opts)?,
        })
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration: roots (or no verification), TLS 1.2 and 1.3, ALPN http/1.1.
pub fn client_config(opts: &TlsOptions) -> anyhow::Result<Arc<ClientConfig>> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("the TLS provider supports no protocol version")?;
    let mut config = if opts.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth()
    } else {
        let roots = match &opts.ca_cert {
            Some(path) => roots_from_pem(path)?,
            None => system_roots(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    // The wire is hand-rolled HTTP/1.1: a server that would pick h2 must not.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Every certificate of a PEM file, as the only trusted roots.
pub fn roots_from_pem(path: &Path) -> anyhow::Result<RootCertStore> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| anyhow::anyhow!("--ca-cert {shown}: cannot read: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--ca-cert {shown}: not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        bail!("--ca-cert {shown}: no CERTIFICATE block in the file");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        bail!("--ca-cert {shown}: none of its {ignored} certificates could be parsed");
    }
    Ok(roots)
}

/// The operating system's trust store (SSL_CERT_FILE / SSL_CERT_DIR are honoured); when it
/// holds nothing (a bare container without ca-certificates), Mozilla's roots compiled in.
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

/// The warning `--insecure` prints once.
pub const INSECURE_WARNING: &str = "WARNING: --insecure: the server's TLS certificate is not \
     verified; anyone on the path can read and alter the traffic";

/// A failed handshake as one line: what rustls said, and for a certificate problem what to do.
pub fn handshake_error(peer: &str, e: &std::io::Error) -> String {
    let rustls_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let hint = match rustls_error {
        Some(rustls::Error::InvalidCertificate(c)) => certificate_hint(c),
        _ => "",
    };
    format!("TLS handshake with {peer} failed: {e}{hint}")
}

fn certificate_hint(e: &rustls::CertificateError) -> &'static str {
    use rustls::CertificateError as C;
    match e {
        C::UnknownIssuer => {
            " (certificate verification failed: no trusted CA signed the server's certificate; \
             pass --ca-cert PATH with its CA, or --insecure to skip verification)"
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            " (certificate verification failed: the certificate does not name this host; \
             connect by a name it lists, or pass --insecure to skip verification)"
        }
        // webpki's reason travels as text only; a self-signed certificate made with
        // openssl's defaults (CA:TRUE) is the usual cause.
        C::Other(other) if other.to_string().contains("CaUsedAsEndEntity") => {
            " (certificate verification failed: the server's certificate is a CA certificate \
             (basicConstraints CA:TRUE); make it with CA:FALSE, or pass --insecure)"
        }
        _ => " (certificate verification failed; --insecure skips verification)",
    }
}

/// `--insecure`: accepts any certificate, but still checks that the server holds the key of
/// the one it presented (the handshake signatures), as curl -k does.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_accept_dns_names_and_ip_addresses() {
        let opts = TlsOptions {
            insecure: true,
            ..Default::default()
        };
        let t = TlsTarget::new("api.example.com", &opts).unwrap();
        assert!(matches!(t.server_name, ServerName::DnsName(_)));
        let t = TlsTarget::new("[::1]", &opts).unwrap();
        assert!(matches!(t.server_name, ServerName::IpAddress(_)));
        assert_eq!(t.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(TlsTarget::new("bad name!", &opts).is_err());
    }

    #[test]
    fn ca_file_errors_name_the_file_and_the_problem() {
        let dir = std::env::temp_dir().join(format!("servebench-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let e = roots_from_pem(&missing).unwrap_err().to_string();
        assert!(
            e.contains("missing.pem") && e.contains("cannot read"),
            "{e}"
        );
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no pem here\n").unwrap();
        let e = roots_from_pem(&empty).unwrap_err().to_string();
        assert!(e.contains("no CERTIFICATE"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn certificate_errors_say_what_to_do() {
        let e = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let line = handshake_error("localhost:443", &e);
        assert!(line.contains("certificate verification failed"), "{line}");
        assert!(line.contains("--ca-cert"), "{line}");
        // webpki's own reason, as rustls passes it on.
        #[derive(Debug)]
        struct CaUsedAsEndEntity;
        impl std::fmt::Display for CaUsedAsEndEntity {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{self:?}")
            }
        }
        impl std::error::Error for CaUsedAsEndEntity {}
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
            rustls::OtherError(Arc::new(CaUsedAsEndEntity)),
        ));
        let line = handshake_error(
            "h:1",
            &std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        );
        assert!(line.contains("CA:FALSE"), "{line}");
        let plain = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(!handshake_error("h:1", &plain).contains("verification"));
    }
}
