//! TLS for [`crate::TestSite::start_tls`]: a self-signed certificate made
//! with rcgen at start (SANs `localhost`, `127.0.0.1` and the bound IP) and
//! a rustls server config (aws-lc-rs provider, the one reqwest already
//! builds) that offers `h2` and `http/1.1` by ALPN.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// What a TLS site needs: the acceptor and the certificate to trust.
pub(crate) struct TlsSetup {
    pub(crate) acceptor: TlsAcceptor,
    /// The self-signed certificate in PEM (it is its own CA).
    pub(crate) cert_pem: String,
}

/// Subject alternative names for a server bound to `ip`.
fn subject_alt_names(ip: IpAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let ip = ip.to_string();
    if !names.contains(&ip) {
        names.push(ip);
    }
    names
}

/// Makes a fresh key and self-signed certificate for `ip` and the server
/// config around them.
pub(crate) fn setup(ip: IpAddr) -> io::Result<TlsSetup> {
    let certified = rcgen::generate_simple_self_signed(subject_alt_names(ip))
        .map_err(|e| io::Error::other(format!("generating the test certificate: {e}")))?;
    let cert_pem = certified.cert.pem();
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let mut config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::other(format!("TLS protocol versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| io::Error::other(format!("TLS server certificate: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsSetup {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        cert_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn sans_include_the_bound_ip_once() {
        assert_eq!(
            subject_alt_names(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ["localhost", "127.0.0.1"]
        );
        assert_eq!(
            subject_alt_names(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))),
            ["localhost", "127.0.0.1", "127.0.0.2"]
        );
    }

    #[test]
    fn setup_makes_a_pem_certificate() {
        let tls = setup(IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
        assert!(tls.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(!tls.cert_pem.contains("PRIVATE KEY"));
    }
}
