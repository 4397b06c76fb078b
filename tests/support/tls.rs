//! Throwaway certificates for the export tests: a CA, a server certificate for
//! `localhost` and a client certificate, all signed by that CA, as PEM text and files.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

pub struct Pem {
    pub cert: String,
    pub key: String,
}

pub struct Pki {
    pub ca: String,
    pub server: Pem,
    pub client: Pem,
    /// Where the files are: `ca.pem`, `client.pem`, `client.key`.
    pub dir: PathBuf,
}

impl Pki {
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn client_cert_file(&self) -> PathBuf {
        self.dir.join("client.pem")
    }

    pub fn client_key_file(&self) -> PathBuf {
        self.dir.join("client.key")
    }
}

/// A fresh CA and the certificates it signs, written to a directory of their own.
pub fn pki(name: &str) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &issuer).unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    };
    let server = leaf(
        vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let client = leaf(
        vec!["exporter".to_owned()],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let dir = std::env::temp_dir().join(format!("instrument-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pki = Pki {
        ca: ca_cert.pem(),
        server,
        client,
        dir,
    };
    std::fs::write(pki.ca_file(), &pki.ca).unwrap();
    std::fs::write(pki.client_cert_file(), &pki.client.cert).unwrap();
    std::fs::write(pki.client_key_file(), &pki.client.key).unwrap();
    pki
}
