//! TLS on both sides of the proxy, with rustls (ring provider).
//!
//! Step 2 of a request's way: a TLS listener's connection is handshaken here
//! ([`accept`]) before [`crate::runtime::conn`] reads its first request; an `https://`
//! back end's fresh connection is handshaken by [`connect`] before the first
//! request is sent on it. Both then read and write through
//! [`crate::io::transport::Transport`], so no HTTP code knows about TLS.
//!
//! | concern | file |
//! |---|---|
//! | rustls over monoio owned-buffer I/O | `stream.rs` |
//! | listener config, client authentication | `server.rs` |
//! | certificate choice by SNI | `sni.rs` |
//! | certificate files rotated on disk | `rotation.rs` |
//! | back-end config: trust, SNI, client certificate | `client.rs` |
//! | PEM certificates and keys | `pem.rs` |
//! | names, subject and expiry of a certificate | `inspect.rs` |

pub mod client;
pub mod inspect;
pub mod pem;
pub mod rotation;
pub mod server;
pub mod sni;

use crate::io::tls_stream::TlsStream;
use crate::io::transport::Transport;
use crate::net::peer::TlsInfo;
use crate::telemetry::format::write_json_str;
use crate::time::deadline::{TaskTimer, Tick};
use client::ClientTls;
use monoio::net::TcpStream;
use rustls::{ClientConnection, Connection, ServerConnection};
use server::ServerTls;

/// What `conn`'s handshake established.
fn info_of(conn: &ServerConnection) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "unknown",
    };
    let server_name = conn.server_name().map(str::to_string);
    let client_subject = conn
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|cert| inspect::subject(cert));
    let mut log_value = Vec::with_capacity(64);
    log_value.extend_from_slice(b"{\"version\":\"");
    log_value.extend_from_slice(version.as_bytes());
    log_value.extend_from_slice(b"\",\"sni\":");
    write_optional(&mut log_value, server_name.as_deref());
    log_value.extend_from_slice(b",\"client_subject\":");
    write_optional(&mut log_value, client_subject.as_deref());
    log_value.push(b'}');
    TlsInfo {
        version,
        server_name,
        client_subject,
        log_value,
    }
}

fn write_optional(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(text) => write_json_str(out, text.as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

/// Runs a TLS listener's handshake on an accepted connection within the
/// listener's handshake timeout. Errors say why, for the debug log.
pub async fn accept(
    tls: &ServerTls,
    tcp: TcpStream,
    timer: &TaskTimer,
) -> Result<(Transport, TlsInfo), String> {
    let conn = ServerConnection::new(tls.config.clone()).map_err(|e| e.to_string())?;
    let mut stream = Box::new(TlsStream::new(tcp, conn));
    let deadline = timer.deadlines().after(tls.handshake_timeout);
    match timer.within(deadline, stream.handshake()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("handshake timed out".into()),
    }
    let info = match stream.connection() {
        Connection::Server(conn) => info_of(conn),
        Connection::Client(_) => TlsInfo::default(),
    };
    Ok((Transport::Tls(stream), info))
}

/// Runs the handshake with an `https://` back end on a fresh connection
/// before `deadline`. Errors say why (certificate verification included).
pub async fn connect(
    tls: &ClientTls,
    tcp: TcpStream,
    timer: &TaskTimer,
    deadline: Tick,
) -> Result<Transport, String> {
    let conn = ClientConnection::new(tls.config.clone(), tls.server_name.clone())
        .map_err(|e| e.to_string())?;
    let mut stream = Box::new(TlsStream::new(tcp, conn));
    match timer.within(deadline, stream.handshake()).await {
        Ok(Ok(())) => Ok(Transport::Tls(stream)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("TLS handshake timed out".into()),
    }
}
