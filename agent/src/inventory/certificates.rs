//! TLS certificates found on the host: system trust store additions and
//! service certificates. Pure domain types; `collect::certificates` fills
//! them.
//!
//! Invariant: one entry per certificate per file (a chain file gives one
//! entry per certificate, with its position), sorted by (path, index);
//! private keys are never read into this section.

use crate::inventory::unreadable::Unreadable;

/// Why a certificate file was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateLocation {
    /// Added to the system trust store by an admin
    /// (`/usr/local/share/ca-certificates`, `/etc/ssl/certs` files that are
    /// not the distribution's, `/etc/pki/ca-trust/source/anchors`).
    TrustStore,
    /// Under `/etc/ssl`, `/etc/pki` or `/etc/letsencrypt/live`.
    Service,
    /// A path from the agent's `certificate_paths`.
    Configured,
}

/// One X.509 certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Certificate {
    /// File it was found in, as seen on the host (symlinks not resolved, so
    /// `/etc/letsencrypt/live/<name>/cert.pem` stays recognisable).
    pub path: String,
    /// 0-based position in the file (chain and bundle files hold several).
    pub index: u32,
    pub location: CertificateLocation,
    /// Distinguished name in the certificate's own order, e.g.
    /// `O=Example, CN=www.example.org` (as `openssl x509 -nameopt
    /// sep_comma_plus_space` without reversing).
    pub subject: String,
    pub issuer: String,
    /// Serial number, lower-case hex without separators.
    pub serial: String,
    /// Subject alternative names: `DNS:host`, `IP:addr`, `email:x`, `URI:u`.
    pub sans: Vec<String>,
    pub not_before_unix_ms: i64,
    pub not_after_unix_ms: i64,
    /// Subject equals issuer and the signature verifies with its own key
    /// (only the names are compared when the algorithm is not supported).
    pub self_signed: bool,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
    /// SHA-256 of the DER encoding, lower-case hex (what `openssl x509
    /// -fingerprint -sha256` prints, without colons).
    pub sha256_fingerprint: String,
}

/// The certificates section.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Certificates {
    pub certificates: Vec<Certificate>,
    /// Files that could not be read or parsed, and scan limits reached.
    pub unreadable: Vec<Unreadable>,
}
