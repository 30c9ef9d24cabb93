//! Certificates for a throw-away control plane: one CA that signs the apiserver's serving
//! certificate and every client certificate, plus the ServiceAccount token signing key.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// OID of the X.509 `organizationName` attribute, which Kubernetes reads as a group.
const ORGANIZATION_NAME_OID: [u64; 4] = [2, 5, 4, 10];

/// A PEM certificate with its PKCS#8 PEM private key.
pub struct KeyedCertificate {
    pub cert_pem: String,
    pub key_pem: String,
}

pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl CertificateAuthority {
    pub fn new(common_name: &str) -> Self {
        let key = KeyPair::generate().expect("generate CA key");
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name_only(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-sign CA");
        CertificateAuthority {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
        }
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A serving certificate valid for the given host names and IP addresses.
    pub fn issue_server(&self, common_name: &str, alt_names: &[&str]) -> KeyedCertificate {
        let names: Vec<String> = alt_names.iter().map(|name| name.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("valid subject alt names");
        params.distinguished_name = common_name_only(common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate that kube-apiserver maps to user `user` in `groups`
    /// (CN = user, one O per group).
    ///
    /// rcgen keeps one value per attribute type, so the second group is written under the
    /// same OID spelled as a custom attribute type; that caps a certificate at two groups.
    /// Every identity the tests need (admin, ServiceAccounts) fits.
    pub fn issue_client(&self, user: &str, groups: &[&str]) -> KeyedCertificate {
        assert!(
            groups.len() <= 2,
            "client certificates carry at most two groups, {user} asked for {groups:?}"
        );
        let mut subject = common_name_only(user);
        if let Some(first) = groups.first() {
            subject.push(DnType::OrganizationName, *first);
        }
        if let Some(second) = groups.get(1) {
            subject.push(
                DnType::CustomDnType(ORGANIZATION_NAME_OID.to_vec()),
                *second,
            );
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = subject;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> KeyedCertificate {
        let key = KeyPair::generate().expect("generate leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        KeyedCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// The key pair kube-apiserver signs and verifies ServiceAccount tokens with.
pub struct ServiceAccountSigningKey {
    pub private_key_pem: String,
    pub public_key_pem: String,
}

impl ServiceAccountSigningKey {
    pub fn generate() -> Self {
        let key = KeyPair::generate().expect("generate ServiceAccount signing key");
        ServiceAccountSigningKey {
            private_key_pem: key.serialize_pem(),
            public_key_pem: key.public_key_pem(),
        }
    }
}

fn common_name_only(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}
