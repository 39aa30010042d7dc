//! PEM files: the CA, the certificate chain, the key.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

use super::TlsError;

/// The three files of `--tls-cert`, `--tls-key` and `--tls-ca`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// This side's certificate (chain), PEM.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1), PEM.
    pub key: PathBuf,
    /// The CA every peer's and client's certificate must chain to, PEM.
    pub ca: PathBuf,
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        flag,
        path: path.to_path_buf(),
        source,
    })
}

fn pem_error(flag: &'static str, path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::Pem {
        flag,
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Every certificate in a PEM file (at least one).
pub fn load_certs(
    flag: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(flag, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(flag, path, format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(pem_error(
            flag,
            path,
            "holds no certificate (no -----BEGIN CERTIFICATE----- block)",
        ));
    }
    Ok(certs)
}

/// The private key of a PEM file. The error never quotes the file.
pub fn load_key(flag: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(flag, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        let reason = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "holds no private key (no -----BEGIN PRIVATE KEY----- block)".to_string()
            }
            other => format!("not a PEM private key ({other})"),
        };
        pem_error(flag, path, reason)
    })
}

/// The CA's certificates as a root store (at least one usable root).
pub fn load_roots(flag: &'static str, path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(flag, path)? {
        roots
            .add(cert)
            .map_err(|e| pem_error(flag, path, format!("not a usable CA certificate ({e})")))?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_named_with_what_is_wrong() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        let e = load_certs("--tls-cert", &missing).expect_err("missing");
        assert!(e.to_string().starts_with("--tls-cert "), "{e}");
        assert!(e.to_string().contains("missing.pem"), "{e}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "hello\n").expect("write");
        let e = load_certs("--tls-ca", &empty).expect_err("no certificate");
        assert!(e.to_string().contains("holds no certificate"), "{e}");
        assert!(e.to_string().contains("empty.pem"), "{e}");
        let e = load_key("--tls-key", &empty).expect_err("no key");
        assert!(e.to_string().contains("holds no private key"), "{e}");

        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let e = load_certs("--tls-cert", &broken).expect_err("bad base64");
        assert!(e.to_string().contains("not a PEM certificate file"), "{e}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let e = load_roots("--tls-ca", &garbage).expect_err("not DER");
        assert!(e.to_string().contains("not a usable CA certificate"), "{e}");
    }
}
