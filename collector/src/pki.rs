//! The collector's private PKI: a CA that signs the server certificate and
//! every agent's client certificate.
//!
//! Files under `<data_dir>/pki/`: `ca.pem`, `ca.key`, `server.pem`,
//! `server.key`. Private keys are written with mode 0600, atomically
//! (temporary file + rename), and never logged. An agent certificate is
//! issued from the CSR's public key only: subject, lifetime and usages are
//! the collector's choice, so a CSR cannot ask for more than a client
//! certificate for its own agent id.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::fsutil::write_private;

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";
pub(crate) const SERVER_CERT: &str = "server.pem";
pub(crate) const SERVER_KEY: &str = "server.key";

/// Every file of the PKI directory with its mode: what a backup carries.
pub const PKI_FILES: [(&str, u32); 4] = [(CA_CERT, 0o644), (CA_KEY, 0o600), (SERVER_CERT, 0o644), (SERVER_KEY, 0o600)];

/// CA lifetime: long, because rotating a CA means touching every agent.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Server certificate lifetime.
const SERVER_LIFETIME: Duration = Duration::from_secs(397 * 24 * 3600);

/// PEM material of the collector's PKI, loaded from `<data_dir>/pki`.
pub struct Pki {
    pub ca_cert_pem: String,
    ca_key_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").field("ca_key_pem", &"***").field("server_key_pem", &"***").finish_non_exhaustive()
    }
}

/// SHA-256 of a DER certificate: how the store recognises an agent's certificate.
pub fn certificate_fingerprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

/// What the store keeps of an agent certificate this CA issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuedCertificate {
    pub fingerprint: [u8; 32],
    pub not_before_unix_ms: i64,
    pub not_after_unix_ms: i64,
}

/// The agent id (the common name) and validity of a client certificate,
/// DER; `None` when it does not parse or names nobody.
pub fn agent_certificate(der: &[u8]) -> Option<(String, IssuedCertificate)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let agent_id = cert.subject().iter_common_name().next()?.as_str().ok()?.to_string();
    let validity = cert.validity();
    Some((
        agent_id,
        IssuedCertificate {
            fingerprint: certificate_fingerprint(der),
            not_before_unix_ms: validity.not_before.timestamp().saturating_mul(1000),
            not_after_unix_ms: validity.not_after.timestamp().saturating_mul(1000),
        },
    ))
}

impl Pki {
    /// Creates a new CA and a server certificate valid for `sans` (DNS names
    /// or IP addresses) in `dir`. Refuses to overwrite an existing CA.
    pub fn create(dir: &Path, sans: &[String], now: SystemTime) -> Result<Pki> {
        if dir.join(CA_KEY).exists() {
            return Err(Error::AlreadyInitialised(dir.to_path_buf()));
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;

        let ca_key = KeyPair::generate().map_err(cert_err)?;
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = name(&format!("Census CA {}", hex::encode(random_bytes::<4>())));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        set_validity(&mut ca_params, now, CA_LIFETIME);
        let ca_cert = ca_params.self_signed(&ca_key).map_err(cert_err)?;

        let issuer = Issuer::new(ca_params, &ca_key);
        let (server_cert_pem, server_key_pem) = issue_server_certificate(&issuer, sans, now)?;

        let pki = Pki { ca_cert_pem: ca_cert.pem(), ca_key_pem: ca_key.serialize_pem(), server_cert_pem, server_key_pem };
        pki.write(dir)?;
        Ok(pki)
    }

    /// Loads the PKI from `dir`.
    pub fn load(dir: &Path) -> Result<Pki> {
        let read = |file: &str| -> Result<String> {
            let path = dir.join(file);
            std::fs::read_to_string(&path).map_err(|e| Error::io("reading", path, e))
        };
        Ok(Pki {
            ca_cert_pem: read(CA_CERT)?,
            ca_key_pem: read(CA_KEY)?,
            server_cert_pem: read(SERVER_CERT)?,
            server_key_pem: read(SERVER_KEY)?,
        })
    }

    /// Path of the CA certificate inside `dir` (handed to agents and the CLI).
    pub fn ca_path(dir: &Path) -> PathBuf {
        dir.join(CA_CERT)
    }

    fn write(&self, dir: &Path) -> Result<()> {
        write_public(&dir.join(CA_CERT), &self.ca_cert_pem)?;
        write_private(&dir.join(CA_KEY), self.ca_key_pem.as_bytes())?;
        write_public(&dir.join(SERVER_CERT), &self.server_cert_pem)?;
        write_private(&dir.join(SERVER_KEY), self.server_key_pem.as_bytes())?;
        Ok(())
    }

    /// Signs an agent's CSR: a client certificate whose common name is the
    /// agent id, valid for `lifetime` from `now`. Returns (PEM, DER).
    pub fn sign_agent_csr(&self, csr_pem: &str, agent_id: &str, lifetime: Duration, now: SystemTime) -> Result<(String, Vec<u8>)> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| Error::InvalidArgument(format!("csr_pem is not a valid PKCS#10 request: {e}")))?;
        let ca_key = KeyPair::from_pem(&self.ca_key_pem).map_err(cert_err)?;
        let issuer = Issuer::from_ca_cert_pem(&self.ca_cert_pem, &ca_key).map_err(cert_err)?;

        let mut params = CertificateParams::default();
        params.distinguished_name = name(agent_id);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.serial_number = Some(SerialNumber::from_slice(&random_bytes::<16>()));
        set_validity(&mut params, now, lifetime);
        let request = CertificateSigningRequestParams { params, public_key: csr.public_key };
        let cert = request.signed_by(&issuer).map_err(cert_err)?;
        Ok((cert.pem(), cert.der().to_vec()))
    }
}

/// What `rotate_server_certificate` issued.
#[derive(Debug, Clone)]
pub struct RotatedCertificate {
    pub sans: Vec<String>,
    pub not_after_unix_ms: i64,
    /// SHA-256 of the new certificate (DER), hex.
    pub sha256: String,
}

/// `census-collector cert rotate`: a new server key and certificate from
/// the same CA, for `sans` (or, when empty, the names of the current
/// certificate), written in place: the key first, then the certificate,
/// each atomically, each keeping the owner of the file it replaces. The CA
/// is untouched, so agents (which pin it) accept the new certificate. A
/// running collector picks the pair up by itself (`tls::watch`).
pub fn rotate_server_certificate(dir: &Path, sans: &[String], now: SystemTime) -> Result<RotatedCertificate> {
    let pki = Pki::load(dir)?;
    let sans = if sans.is_empty() { names_of(&pki.server_cert_pem)? } else { sans.to_vec() };
    if sans.is_empty() {
        return Err(Error::Config("the current server certificate names nothing; give the names with --san".into()));
    }
    let ca_key = KeyPair::from_pem(&pki.ca_key_pem).map_err(cert_err)?;
    let issuer = Issuer::from_ca_cert_pem(&pki.ca_cert_pem, &ca_key).map_err(cert_err)?;
    let (cert_pem, key_pem) = issue_server_certificate(&issuer, &sans, now)?;
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| Error::Certificate(e.to_string()))?;
    write_private(&dir.join(SERVER_KEY), key_pem.as_bytes())?;
    write_public(&dir.join(SERVER_CERT), &cert_pem)?;
    Ok(RotatedCertificate {
        sans,
        not_after_unix_ms: crate::clock::unix_ms(now + SERVER_LIFETIME),
        sha256: hex::encode(certificate_fingerprint(der.as_ref())),
    })
}

/// The DNS names and IP addresses a certificate is valid for.
/// The names (DNS names and addresses) the current server certificate in
/// `dir` is valid for.
pub fn server_names(dir: &Path) -> Result<Vec<String>> {
    names_of(&Pki::load(dir)?.server_cert_pem)
}

fn names_of(cert_pem: &str) -> Result<Vec<String>> {
    use x509_parser::extensions::GeneralName;
    let unreadable = |e: String| Error::Certificate(format!("the current server certificate is unreadable: {e}"));
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).map_err(|e| unreadable(e.to_string()))?;
    let cert = pem.parse_x509().map_err(|e| unreadable(e.to_string()))?;
    let Some(sans) = cert.subject_alternative_name().map_err(|e| unreadable(e.to_string()))? else { return Ok(Vec::new()) };
    Ok(sans
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_string()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes).ok().map(|b| std::net::IpAddr::from(b).to_string()),
                16 => <[u8; 16]>::try_from(*bytes).ok().map(|b| std::net::IpAddr::from(b).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect())
}

fn issue_server_certificate(issuer: &Issuer<'_, &KeyPair>, sans: &[String], now: SystemTime) -> Result<(String, String)> {
    let key = KeyPair::generate().map_err(cert_err)?;
    let mut params = CertificateParams::new(sans.to_vec()).map_err(cert_err)?;
    params.distinguished_name = name(sans.first().map(String::as_str).unwrap_or("census-collector"));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.serial_number = Some(SerialNumber::from_slice(&random_bytes::<16>()));
    set_validity(&mut params, now, SERVER_LIFETIME);
    let cert = params.signed_by(&key, issuer).map_err(cert_err)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Census");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn set_validity(params: &mut CertificateParams, now: SystemTime, lifetime: Duration) {
    // Backdate a little so an endpoint whose clock runs slightly behind
    // still accepts a certificate issued "now": 5 minutes, or a quarter of
    // a short lifetime, so an agent that renews when a share of the
    // validity period is left still gets most of its lifetime first.
    let backdate = Duration::from_secs(300).min(lifetime / 4);
    let now = time::OffsetDateTime::from(now);
    params.not_before = now - backdate;
    params.not_after = now + lifetime;
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
    // A DER serial must be positive: clear the sign bit.
    bytes[0] &= 0x7f;
    bytes
}

fn write_public(path: &Path, text: &str) -> Result<()> {
    crate::fsutil::write_atomic(path, text.as_bytes(), 0o644)
}

fn cert_err(e: rcgen::Error) -> Error {
    Error::Certificate(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_certificate_uses_only_the_csr_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = Pki::create(dir.path(), &["localhost".into(), "127.0.0.1".into()], SystemTime::now()).expect("create pki");
        let agent_key = KeyPair::generate().expect("key");
        let mut asked = CertificateParams::new(vec!["evil.example".to_string()]).expect("params");
        asked.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let csr = asked.serialize_request(&agent_key).expect("csr").pem().expect("pem");
        let (pem, der) = pki.sign_agent_csr(&csr, "abc123", Duration::from_secs(3600), SystemTime::now()).expect("signed");
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        // The CA flag and the SAN the CSR asked for must not be in the result.
        let parsed = CertificateSigningRequestParams::from_pem(&csr).expect("csr parses");
        assert!(!parsed.params.subject_alt_names.is_empty(), "fixture really asks for a SAN");
        let text = String::from_utf8_lossy(&der);
        assert!(!text.contains("evil.example"), "SAN from the CSR leaked into the certificate");
        // serverAuth OID 1.3.6.1.5.5.7.3.1 must not appear; clientAuth (.3.2) must.
        let server_auth = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
        let client_auth = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
        assert!(!der.windows(8).any(|w| w == server_auth), "EKU from the CSR leaked");
        assert!(der.windows(8).any(|w| w == client_auth), "client certificate has clientAuth");
        assert!(text.contains("abc123"), "agent id is the subject");
    }

    #[test]
    fn create_refuses_to_overwrite_and_load_round_trips() {
        let dir = tempfile::tempdir().expect("temp dir");
        let created = Pki::create(dir.path(), &["localhost".into()], SystemTime::now()).expect("create");
        let err = Pki::create(dir.path(), &["localhost".into()], SystemTime::now()).unwrap_err();
        assert!(matches!(err, Error::AlreadyInitialised(_)));
        let loaded = Pki::load(dir.path()).expect("load");
        assert_eq!(loaded.ca_cert_pem, created.ca_cert_pem);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(CA_KEY)).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "CA key must be private");
        }
    }

    #[test]
    fn rotation_keeps_the_ca_and_the_names_unless_told_otherwise() {
        let dir = tempfile::tempdir().expect("temp dir");
        let created = Pki::create(dir.path(), &["collector.example".into(), "10.0.0.7".into()], SystemTime::now()).expect("create");
        let rotated = rotate_server_certificate(dir.path(), &[], SystemTime::now()).expect("rotate");
        assert_eq!(rotated.sans, ["collector.example", "10.0.0.7"], "names of the current certificate");
        let loaded = Pki::load(dir.path()).expect("load");
        assert_eq!(loaded.ca_cert_pem, created.ca_cert_pem, "same CA");
        assert_ne!(loaded.server_cert_pem, created.server_cert_pem);
        assert_ne!(loaded.server_key_pem, created.server_key_pem, "a new key, not only a new certificate");
        // Signed by the CA: rcgen accepts it as issued by that CA's key.
        let ca_key = KeyPair::from_pem(&loaded.ca_key_pem).expect("ca key");
        Issuer::from_ca_cert_pem(&loaded.ca_cert_pem, &ca_key).expect("issuer");
        assert!(loaded.server_cert_pem.contains("BEGIN CERTIFICATE"));
        let renamed = rotate_server_certificate(dir.path(), &["census.test".into()], SystemTime::now()).expect("rotate with names");
        assert_eq!(names_of(&Pki::load(dir.path()).expect("load").server_cert_pem).expect("names"), ["census.test"]);
        assert_ne!(renamed.sha256, rotated.sha256);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SERVER_KEY)).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "server key stays private");
        }
    }

    /// A new PKI in `dir`, an agent's CSR, and a fixed "now".
    fn pki_and_csr(dir: &Path) -> (Pki, String, SystemTime) {
        let pki = Pki::create(dir, &["localhost".into()], SystemTime::now()).expect("create");
        let key = KeyPair::generate().expect("key");
        let csr = CertificateParams::default().serialize_request(&key).expect("csr").pem().expect("pem");
        (pki, csr, SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000))
    }

    #[test]
    fn short_lifetimes_are_backdated_by_a_quarter_at_most() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (pki, csr, now) = pki_and_csr(dir.path());
        let validity = |lifetime: u64| {
            let (_, der) = pki.sign_agent_csr(&csr, "a", Duration::from_secs(lifetime), now).expect("signed");
            let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("parse");
            (cert.validity().not_before.timestamp(), cert.validity().not_after.timestamp())
        };
        assert_eq!(validity(20), (1_800_000_000 - 5, 1_800_000_020));
        assert_eq!(validity(86_400), (1_800_000_000 - 300, 1_800_086_400));
    }

    #[test]
    fn an_agent_certificate_names_its_agent_and_validity() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (pki, csr, now) = pki_and_csr(dir.path());
        let (_, der) = pki.sign_agent_csr(&csr, "0123456789abcdef0123456789abcdef", Duration::from_secs(3600), now).expect("signed");
        let (agent_id, issued) = agent_certificate(&der).expect("parses");
        assert_eq!(agent_id, "0123456789abcdef0123456789abcdef");
        assert_eq!(issued.fingerprint, certificate_fingerprint(&der));
        assert_eq!((issued.not_before_unix_ms, issued.not_after_unix_ms), (1_799_999_700_000, 1_800_003_600_000));
        assert_eq!(agent_certificate(b"not a certificate"), None);
    }

    #[test]
    fn garbage_csr_is_invalid_argument() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = Pki::create(dir.path(), &["localhost".into()], SystemTime::now()).expect("create");
        let err = pki.sign_agent_csr("not a csr", "a", Duration::from_secs(60), SystemTime::now()).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
}
