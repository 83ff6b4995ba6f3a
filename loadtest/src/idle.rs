//! Idle keep-alive connections: open N connections, send one request on each
//! and read its whole answer, then hold them open and silent for a while.
//! The idle-connections scenario measures the server's memory meanwhile.
//! Prints `READY <open>` on stdout once all are open, then `CLOSED <n>` for
//! those the server closed during the hold.

use crate::spec::{parse_duration, Target};
use anyhow::Context;
use clap::Args;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Args)]
pub struct IdleArgs {
    /// URL to send the one request to (loopback).
    url: String,
    /// Connections to open.
    #[arg(long, short = 'c', default_value_t = 10_000)]
    connections: usize,
    /// How long to hold them once all are open.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    hold: Duration,
}

pub fn main(args: IdleArgs) -> anyhow::Result<()> {
    let target = Target::parse(&args.url)?;
    if target.tls {
        anyhow::bail!("idle connections are plain HTTP only");
    }
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
        target.path, target.authority
    );
    let mut held = Vec::with_capacity(args.connections);
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..args.connections {
        let mut stream = TcpStream::connect_timeout(&target.addr, Duration::from_secs(5))
            .with_context(|| format!("connection {i} of {}", args.connections))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(request.as_bytes())?;
        let status =
            read_answer(&mut stream).with_context(|| format!("answer on connection {i}"))?;
        *statuses.entry(status).or_default() += 1;
        held.push(stream);
    }
    println!("READY {} {:?}", held.len(), statuses);
    std::thread::sleep(args.hold);
    let mut closed = 0;
    for stream in &mut held {
        stream.set_nonblocking(true)?;
        let mut byte = [0u8; 1];
        if matches!(stream.read(&mut byte), Ok(0)) {
            closed += 1;
        }
    }
    println!("CLOSED {closed}");
    Ok(())
}

/// Reads one answer with a Content-Length body; returns its status code.
fn read_answer(stream: &mut TcpStream) -> anyhow::Result<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            anyhow::bail!("closed before the answer was complete");
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(len) = response.parse(&buf)? {
            let length: usize = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= len + length {
                return Ok(response.code.unwrap_or(0).to_string());
            }
        }
    }
}
