//! TLS for the client side: a rustls client config from `--ca FILE` or
//! `--insecure`, and a stream that runs rustls over a monoio `TcpStream`.
//!
//! rustls does no I/O: ciphertext read from the socket is fed in with
//! `read_tls`, and what it wants to send is drained with `write_tls` and
//! written out. Errors come back as `io::Error` with the TLS reason inside.

use crate::spec::TlsSpec;
use anyhow::Context;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};
use std::io::{self, Read, Write};
use std::sync::Arc;

/// The client config and the server name every connection uses.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl TlsClient {
    pub fn new(spec: &TlsSpec) -> anyhow::Result<TlsClient> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        let config = if spec.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider)))
                .with_no_client_auth()
        } else {
            let path = spec
                .ca_file
                .as_deref()
                .context("--tls needs --ca FILE or --insecure")?;
            let pem = std::fs::read(path).with_context(|| format!("reading CA file {path}"))?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.with_context(|| format!("parsing certificates in {path}"))?;
                roots
                    .add(cert)
                    .with_context(|| format!("adding a certificate from {path}"))?;
            }
            if roots.is_empty() {
                anyhow::bail!("no certificate found in {path}");
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        let name = ServerName::try_from(spec.server_name.clone())
            .with_context(|| format!("{:?} is not a valid TLS server name", spec.server_name))?;
        Ok(TlsClient {
            config: Arc::new(config),
            name,
        })
    }

    /// Runs the handshake over `tcp`.
    pub async fn connect(&self, tcp: TcpStream) -> io::Result<TlsStream> {
        let conn = ClientConnection::new(self.config.clone(), self.name.clone())
            .map_err(io::Error::other)?;
        let mut stream = TlsStream {
            tcp,
            conn,
            raw: Vec::with_capacity(16 * 1024 + 256),
            out: Vec::with_capacity(4096),
        };
        while stream.conn.is_handshaking() {
            stream.flush_tls().await?;
            if stream.conn.is_handshaking()
                && stream.conn.wants_read()
                && stream.read_tls().await? == 0
            {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        stream.flush_tls().await?;
        Ok(stream)
    }
}

/// A TLS client connection over a monoio socket.
pub struct TlsStream {
    tcp: TcpStream,
    conn: ClientConnection,
    /// Ciphertext read but not yet given to rustls.
    raw: Vec<u8>,
    /// Ciphertext to send.
    out: Vec<u8>,
}

impl TlsStream {
    /// Encrypts and sends all of `data`.
    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.conn.writer().write_all(data)?;
        self.flush_tls().await
    }

    /// Appends decrypted bytes to `buf` (up to its spare capacity); 0 at end of stream.
    pub async fn read_into(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        loop {
            let start = buf.len();
            let spare = (buf.capacity() - start).clamp(1, 16 * 1024);
            buf.resize(start + spare, 0);
            let read = self.conn.reader().read(&mut buf[start..]);
            buf.truncate(start + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.read_tls().await? == 0 {
                return Ok(0);
            }
            self.flush_tls().await?;
        }
    }

    /// Reads ciphertext from the socket into rustls; 0 at end of stream.
    async fn read_tls(&mut self) -> io::Result<usize> {
        let mut raw = std::mem::take(&mut self.raw);
        raw.clear();
        let (result, slice) = self.tcp.read(raw.slice_mut(0..)).await;
        self.raw = slice.into_inner();
        let n = result?;
        let mut fed = &self.raw[..];
        while !fed.is_empty() {
            self.conn.read_tls(&mut fed)?;
            self.conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        Ok(n)
    }

    /// Sends whatever rustls has queued.
    async fn flush_tls(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            let mut out = std::mem::take(&mut self.out);
            out.clear();
            self.conn.write_tls(&mut out)?;
            let (result, back) = self.tcp.write_all(out).await;
            self.out = back;
            result?;
        }
        Ok(())
    }
}

/// `--insecure`: every certificate is accepted (signatures are still checked
/// for well-formedness by the provider).
#[derive(Debug)]
struct AcceptAnything(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
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
        rustls::crypto::verify_tls12_signature(
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
        rustls::crypto::verify_tls13_signature(
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
