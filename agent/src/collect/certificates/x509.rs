//! Pure parsing of certificate files: PEM (any number of `CERTIFICATE`
//! blocks) or a single DER certificate, into [`Certificate`]s. Private key
//! blocks are skipped unread; other PEM blocks (CRLs, public keys,
//! parameters) are ignored. Never touches the filesystem, never panics on
//! input.

use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::inventory::certificates::{Certificate, CertificateLocation};

/// More certificates than this in one file are not reported (the distro
/// bundles, the only files this large, are not scanned).
pub const MAX_CERTIFICATES_PER_FILE: usize = 500;

/// What one file held.
#[derive(Debug, Default)]
pub struct FileCertificates {
    pub certificates: Vec<Certificate>,
    /// Private key blocks seen and skipped.
    pub private_keys: usize,
    /// Why (part of) the file could not be used: a broken block, not a
    /// certificate at all, too many certificates.
    pub problems: Vec<String>,
}

/// Parses one file's bytes; `path` is recorded in each certificate.
pub fn parse_file(bytes: &[u8], path: &str, location: CertificateLocation) -> FileCertificates {
    let mut out = FileCertificates::default();
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        match X509Certificate::from_der(bytes) {
            Ok((_, cert)) => out.certificates.push(certificate(&cert, bytes, path, 0, location)),
            Err(e) => out.problems.push(format!("neither PEM nor a DER certificate ({e})")),
        }
        return out;
    }
    for block in Pem::iter_from_buffer(bytes) {
        let pem = match block {
            Ok(pem) => pem,
            Err(e) => {
                out.problems.push(format!("broken PEM block after {} certificates ({e})", out.certificates.len()));
                break;
            }
        };
        if pem.label.contains("PRIVATE KEY") {
            out.private_keys += 1;
            continue;
        }
        if pem.label != "CERTIFICATE" && pem.label != "TRUSTED CERTIFICATE" && pem.label != "X509 CERTIFICATE" {
            continue;
        }
        if out.certificates.len() == MAX_CERTIFICATES_PER_FILE {
            out.problems.push(format!("more than {MAX_CERTIFICATES_PER_FILE} certificates; the rest are not reported"));
            break;
        }
        let index = u32::try_from(out.certificates.len()).unwrap_or(u32::MAX);
        match X509Certificate::from_der(&pem.contents) {
            // TRUSTED CERTIFICATE blocks carry OpenSSL trust settings after
            // the certificate: the fingerprint covers the certificate only.
            Ok((rest, cert)) => {
                let der = &pem.contents[..pem.contents.len() - rest.len()];
                out.certificates.push(certificate(&cert, der, path, index, location));
            }
            Err(e) => out.problems.push(format!("certificate block {} does not parse ({e})", index)),
        }
    }
    out
}

fn certificate(cert: &X509Certificate<'_>, der: &[u8], path: &str, index: u32, location: CertificateLocation) -> Certificate {
    let sans = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext.value.general_names.iter().filter_map(general_name).collect(),
        _ => Vec::new(),
    };
    let same_name = cert.subject().as_raw() == cert.issuer().as_raw();
    // An unsupported signature algorithm cannot be checked: names decide.
    let self_signed = same_name
        && match cert.verify_signature(None) {
            Ok(()) => true,
            Err(x509_parser::error::X509Error::SignatureUnsupportedAlgorithm) => true,
            Err(_) => false,
        };
    Certificate {
        path: path.to_owned(),
        index,
        location,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: hex::encode(cert.raw_serial()),
        sans,
        not_before_unix_ms: cert.validity().not_before.timestamp().saturating_mul(1000),
        not_after_unix_ms: cert.validity().not_after.timestamp().saturating_mul(1000),
        self_signed,
        is_ca: cert.is_ca(),
        sha256_fingerprint: hex::encode(Sha256::digest(der)),
    }
}

fn general_name(name: &GeneralName<'_>) -> Option<String> {
    Some(match name {
        GeneralName::DNSName(n) => format!("DNS:{n}"),
        GeneralName::RFC822Name(n) => format!("email:{n}"),
        GeneralName::URI(n) => format!("URI:{n}"),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => format!("IP:{}", std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).ok()?)),
            16 => format!("IP:{}", std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).ok()?)),
            _ => return None,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/certificates").join(name))
            .expect("fixture exists")
    }

    fn parse(name: &str) -> FileCertificates {
        parse_file(&fixture(name), name, CertificateLocation::Service)
    }

    #[test]
    fn self_signed_certificate_with_sans() {
        let found = parse("tree/etc/ssl/web.pem");
        assert!(found.problems.is_empty(), "{:?}", found.problems);
        let [cert] = found.certificates.as_slice() else { panic!("one certificate: {:?}", found.certificates) };
        assert_eq!(cert.subject, "O=Census Test, CN=web.example.test");
        assert_eq!(cert.subject, cert.issuer);
        assert_eq!(cert.sans, ["DNS:web.example.test", "DNS:www.example.test", "IP:192.0.2.10", "IP:2001:db8::1"]);
        assert!(cert.self_signed && !cert.is_ca);
        assert_eq!(cert.sha256_fingerprint.len(), 64);
        assert!(cert.not_after_unix_ms > cert.not_before_unix_ms);
    }

    #[test]
    fn chain_file_gives_one_entry_per_certificate_in_order() {
        let found = parse("tree/etc/letsencrypt/archive/example.test/fullchain1.pem");
        let subjects: Vec<(&str, u32, bool, bool)> =
            found.certificates.iter().map(|c| (c.subject.as_str(), c.index, c.is_ca, c.self_signed)).collect();
        assert_eq!(subjects, [("CN=example.test", 0, false, false), ("CN=Census Test CA", 1, true, true)]);
        assert_eq!(found.certificates[0].issuer, "CN=Census Test CA");
    }

    #[test]
    fn expired_certificate_keeps_its_dates() {
        let found = parse("tree/etc/pki/tls/certs/expired.crt");
        let cert = &found.certificates[0];
        // notAfter 2020-01-02 00:00:00 UTC.
        assert_eq!(cert.not_after_unix_ms, 1_577_923_200_000);
    }

    #[test]
    fn private_keys_are_skipped_and_garbage_is_a_problem() {
        let key = parse("tree/etc/ssl/web.key.pem");
        assert_eq!((key.certificates.len(), key.private_keys, key.problems.len()), (0, 1, 0));
        let garbage = parse("tree/etc/ssl/garbage.crt");
        assert!(garbage.certificates.is_empty());
        assert!(garbage.problems[0].contains("neither PEM nor"), "{:?}", garbage.problems);
        let truncated = parse("truncated.pem");
        assert!(truncated.certificates.is_empty() && !truncated.problems.is_empty(), "{:?}", truncated.problems);
        for hostile in
            [&b"-----BEGIN CERTIFICATE-----\n\xff\xfe\n-----END CERTIFICATE-----\n"[..], b"-----BEGIN ", b"\x30\x82\xff\xff", b""]
        {
            let found = parse_file(hostile, "x", CertificateLocation::Configured);
            assert!(found.certificates.is_empty() && !found.problems.is_empty(), "{hostile:?}: {:?}", found.problems);
        }
        let der = parse("web.der");
        assert_eq!(der.certificates.len(), 1);
        assert_eq!(der.certificates[0].sha256_fingerprint, parse("tree/etc/ssl/web.pem").certificates[0].sha256_fingerprint);
    }
}
