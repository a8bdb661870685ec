//! TLS for both listeners, done here rather than by tonic so that the
//! server certificate can change while the collector serves
//! (`census-collector cert rotate`): tonic's `ServerTlsConfig` is fixed
//! once the server is built, and takes no rustls configuration of ours.
//!
//! `ServerCertificate` is the rustls certificate resolver both listeners
//! share. `watch` re-reads `pki/server.pem` and `pki/server.key` every
//! `RELOAD_EVERY` and swaps them in when their contents changed and the
//! key matches the certificate; a look between the two renames of a
//! rotation sees a mismatch and keeps the old pair until the next round.
//! New connections get the new certificate; established ones keep theirs.
//!
//! `incoming` turns accepted TCP connections into TLS streams, every
//! handshake on its own task with a deadline, so a slow or silent client
//! never holds up the others. tonic reads the client certificate from the
//! stream (`Request::peer_certs`) exactly as with its own TLS.
//!
//! Invariants: the agent listener accepts a client certificate only when it
//! chains to this collector's CA (it stays optional at the TLS layer so
//! that `Enroll` works without one; `agent_api` refuses every other call
//! without one). Private keys are never logged.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, info, warn};

use crate::error::{Error, Result};

/// How often the PKI directory is checked for a rotated server certificate.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);
/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the gRPC server to take them. When
/// full, accepting waits (the kernel's backlog holds new connections).
const ACCEPTED_QUEUE: usize = 64;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server certificate and key in force, reloadable.
pub struct ServerCertificate {
    pki_dir: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// SHA-256 of the two PEM files the current pair was read from.
    loaded_from: Mutex<[u8; 32]>,
}

impl std::fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCertificate").field("pki_dir", &self.pki_dir).finish_non_exhaustive()
    }
}

impl ServerCertificate {
    /// Loads `server.pem` and `server.key` from `pki_dir`.
    pub fn load(pki_dir: &Path) -> Result<Arc<ServerCertificate>> {
        let (cert_pem, key_pem) = read_pair(pki_dir)?;
        let key = certified_key(&cert_pem, &key_pem)?;
        Ok(Arc::new(ServerCertificate {
            pki_dir: pki_dir.to_path_buf(),
            current: RwLock::new(Arc::new(key)),
            loaded_from: Mutex::new(digest_of(&cert_pem, &key_pem)),
        }))
    }

    /// Re-reads the files and takes them when they changed and agree.
    /// Returns the SHA-256 (hex) of the new certificate when it changed.
    pub fn reload(&self) -> Result<Option<String>> {
        let (cert_pem, key_pem) = read_pair(&self.pki_dir)?;
        let digest = digest_of(&cert_pem, &key_pem);
        let mut loaded_from = self.loaded_from.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *loaded_from == digest {
            return Ok(None);
        }
        let key = certified_key(&cert_pem, &key_pem)?;
        let fingerprint = hex::encode(crate::pki::certificate_fingerprint(key.end_entity_cert().map_err(tls_err)?.as_ref()));
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(key);
        *loaded_from = digest;
        Ok(Some(fingerprint))
    }

    /// The certificate in force, DER.
    pub fn certificate_der(&self) -> Vec<u8> {
        let current = self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        current.cert.first().map(|c| c.as_ref().to_vec()).unwrap_or_default()
    }
}

impl ResolvesServerCert for ServerCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner)))
    }
}

fn read_pair(pki_dir: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let read = |name: &str| {
        let path = pki_dir.join(name);
        std::fs::read(&path).map_err(|e| Error::io("reading", path, e))
    };
    Ok((read(crate::pki::SERVER_CERT)?, read(crate::pki::SERVER_KEY)?))
}

fn digest_of(cert_pem: &[u8], key_pem: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((cert_pem.len() as u64).to_be_bytes());
    h.update(cert_pem);
    h.update(key_pem);
    h.finalize().into()
}

fn tls_err(e: rustls::Error) -> Error {
    Error::Certificate(format!("server certificate: {e}"))
}

/// A certificate chain and its private key, checked to belong together.
fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Certificate(format!("server.pem: {e}")))?;
    if chain.is_empty() {
        return Err(Error::Certificate("server.pem holds no certificate".into()));
    }
    // The key's own parse error could quote it: say only that it failed.
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| Error::Certificate("server.key holds no readable private key".into()))?;
    let certified = CertifiedKey::from_der(chain, key, &provider()).map_err(tls_err)?;
    Ok(certified)
}

/// The rustls configuration of a listener: the reloadable server
/// certificate, HTTP/2 by ALPN, and, with `client_ca_pem`, optional client
/// certificates that must chain to that CA.
pub fn server_config(certificate: Arc<ServerCertificate>, client_ca_pem: Option<&str>) -> Result<Arc<rustls::ServerConfig>> {
    let builder = rustls::ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().map_err(tls_err)?;
    let builder = match client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| Error::Certificate(format!("ca.pem: {e}")))?;
                roots.add(cert).map_err(tls_err)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| Error::Certificate(format!("client certificate verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Checks the PKI directory every `RELOAD_EVERY` and swaps in a rotated
/// server certificate. Runs until aborted.
pub async fn watch(certificate: Arc<ServerCertificate>) {
    let mut every = tokio::time::interval(RELOAD_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    // Log a failure once until it changes, not every round.
    let mut last_error = String::new();
    loop {
        every.tick().await;
        let cert = Arc::clone(&certificate);
        match tokio::task::spawn_blocking(move || cert.reload()).await {
            Ok(Ok(Some(sha256))) => {
                info!(%sha256, "server certificate reloaded; new connections use it");
                last_error.clear();
            }
            Ok(Ok(None)) => last_error.clear(),
            Ok(Err(e)) => {
                let text = e.to_string();
                if text != last_error {
                    // Expected for a moment while a rotation renames its two
                    // files; the next round takes the pair once it agrees.
                    warn!(error = %text, "server certificate files not (yet) usable; keeping the current certificate");
                    last_error = text;
                }
            }
            Err(e) => warn!(error = %e, "server certificate reload task failed"),
        }
    }
}

/// A bound listening socket, not yet serving.
pub fn bind(addr: SocketAddr, what: &str) -> Result<(std::net::TcpListener, SocketAddr)> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| Error::Config(format!("cannot listen on {addr} for the {what}: {e}")))?;
    listener.set_nonblocking(true).map_err(|e| Error::Config(format!("cannot listen on {addr} for the {what}: {e}")))?;
    let local = listener.local_addr().map_err(|e| Error::io("reading local address of", what, e))?;
    Ok((listener, local))
}

/// The TLS connections of `listener` as tonic's `serve_with_incoming`
/// takes them. Must be called inside the runtime. Accepting stops when the
/// returned stream is dropped.
pub fn incoming(
    listener: std::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    what: &'static str,
) -> Result<ReceiverStream<std::io::Result<TlsStream<TcpStream>>>> {
    let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| Error::io("listening for the", what, e))?;
    let (tx, rx) = tokio::sync::mpsc::channel(ACCEPTED_QUEUE);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        let mut handshakes = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let _ = tcp.set_nodelay(true);
                        let acceptor = acceptor.clone();
                        handshakes.spawn(async move { (peer, tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await) });
                    }
                    Err(e) => {
                        // Out of file descriptors, most likely: give the
                        // process a moment rather than spin.
                        warn!(listener = what, error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(done) = handshakes.join_next(), if !handshakes.is_empty() => match done {
                    Ok((_, Ok(Ok(tls)))) => {
                        if tx.send(Ok(tls)).await.is_err() {
                            break;
                        }
                    }
                    // Scanners, expired or foreign client certificates:
                    // the peer learns why from the TLS alert.
                    Ok((peer, Ok(Err(e)))) => debug!(listener = what, %peer, error = %e, "TLS handshake failed"),
                    Ok((peer, Err(_))) => debug!(listener = what, %peer, "TLS handshake timed out"),
                    Err(e) => warn!(listener = what, error = %e, "TLS handshake task failed"),
                },
                _ = tx.closed() => break,
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_takes_a_rotated_pair_and_refuses_a_mismatched_one() {
        let dir = tempfile::tempdir().expect("tmp");
        crate::pki::Pki::create(dir.path(), &["localhost".into()], std::time::SystemTime::now()).expect("pki");
        let cert = ServerCertificate::load(dir.path()).expect("load");
        let first = cert.certificate_der();
        assert_eq!(cert.reload().expect("unchanged"), None);

        let old_cert = std::fs::read(dir.path().join("server.pem")).expect("old cert");
        crate::pki::rotate_server_certificate(dir.path(), &[], std::time::SystemTime::now()).expect("rotate");
        // Between the two renames of a rotation: new key, old certificate.
        let new_cert = std::fs::read(dir.path().join("server.pem")).expect("new cert");
        std::fs::write(dir.path().join("server.pem"), &old_cert).expect("old cert back");
        let err = cert.reload().expect_err("a key that does not match its certificate");
        assert!(err.to_string().contains("server certificate"), "{err}");
        assert_eq!(cert.certificate_der(), first, "the old pair stays in force");

        std::fs::write(dir.path().join("server.pem"), &new_cert).expect("new cert");
        let sha256 = cert.reload().expect("consistent pair").expect("changed");
        assert_ne!(cert.certificate_der(), first);
        assert_eq!(sha256, hex::encode(crate::pki::certificate_fingerprint(&cert.certificate_der())));
    }
}
