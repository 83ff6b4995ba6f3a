//! The built-in fast upstream: answers every request with the same small 200
//! (optionally after a delay), keeps connections alive, pipelining included.
//! Scenarios proxy to it so that the back end costs as little as possible and
//! the same for every peer. It may listen on several addresses (`--listen`
//! repeated: a back end of several servers), every thread serving them all.
//! Runs until killed (SIGTERM) or for `--for`.

use crate::spec::parse_duration;
use anyhow::Context;
use clap::Args;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};
use portcullis::http::chunked::ChunkedDecoder;
use std::rc::Rc;
use std::time::Duration;

/// Most header fields a request may carry.
const MAX_HEADERS: usize = 64;
/// Largest request head accepted (a longer one closes the connection).
const MAX_HEAD: usize = 64 * 1024;

#[derive(Args)]
pub struct UpstreamArgs {
    /// Address to listen on (loopback), e.g. 127.0.0.1:9000; repeat it to
    /// listen on several.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: Vec<String>,
    /// Wait this long before each answer (e.g. 5ms).
    #[arg(long, value_parser = parse_duration)]
    delay: Option<Duration>,
    /// Threads, each with its own runtime and SO_REUSEPORT socket.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Body of every answer.
    #[arg(long, default_value = "hello\n")]
    body: String,
    /// Exit after this long (default: run until killed).
    #[arg(long = "for", value_parser = parse_duration)]
    run_for: Option<Duration>,
}

pub fn main(args: UpstreamArgs) -> anyhow::Result<()> {
    let mut addrs: Vec<std::net::SocketAddr> = Vec::new();
    for text in &args.listen {
        let addr: std::net::SocketAddr = text
            .parse()
            .with_context(|| format!("--listen {text:?} is not IP:PORT"))?;
        if !addr.ip().is_loopback() {
            anyhow::bail!("--listen {text}: must be a loopback address");
        }
        addrs.push(addr);
    }
    let answer: Vec<u8> = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{}",
        args.body.len(),
        args.body
    )
    .into_bytes();
    // Bind every socket before serving, so that readiness means all are up:
    // each thread gets its own socket on every address.
    let per_thread: Vec<Vec<std::net::TcpListener>> = (0..args.threads.max(1))
        .map(|_| addrs.iter().map(|a| bind_std(*a)).collect())
        .collect::<anyhow::Result<_>>()?;
    for addr in &addrs {
        println!("listening on {addr}");
    }
    if let Some(run_for) = args.run_for {
        std::thread::spawn(move || {
            std::thread::sleep(run_for);
            std::process::exit(0);
        });
    }
    let handles: Vec<_> = per_thread
        .into_iter()
        .map(|listeners| {
            let answer = answer.clone();
            let delay = args.delay;
            std::thread::spawn(move || {
                crate::runtime::block_on(async move {
                    let mut tasks = Vec::new();
                    for listener in listeners {
                        let listener = TcpListener::from_std(listener)?;
                        tasks.push(monoio::spawn(serve(listener, answer.clone(), delay)));
                    }
                    for task in tasks {
                        task.await;
                    }
                    Ok::<(), std::io::Error>(())
                })
            })
        })
        .collect();
    for handle in handles {
        match handle.join() {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e)) | Err(e)) => return Err(e).context("upstream thread"),
            Err(_) => anyhow::bail!("an upstream thread panicked"),
        }
    }
    Ok(())
}

/// A listening socket with SO_REUSEPORT, so that every thread has its own.
fn bind_std(addr: std::net::SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_port(true)?;
    socket.set_reuse_address(true)?;
    socket
        .bind(&addr.into())
        .with_context(|| format!("binding {addr}"))?;
    socket.listen(4096)?;
    Ok(socket.into())
}

async fn serve(listener: TcpListener, answer: Vec<u8>, delay: Option<Duration>) {
    let answer: Rc<Vec<u8>> = Rc::new(answer);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                monoio::spawn(connection(stream, answer.clone(), delay));
            }
            Err(_) => monoio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Where a connection's reading stands.
enum Body {
    Head,
    Length(u64),
    Chunked(ChunkedDecoder),
}

async fn connection(mut stream: TcpStream, answer: Rc<Vec<u8>>, delay: Option<Duration>) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut out: Vec<u8> = Vec::with_capacity(answer.len() * 4);
    let mut state = Body::Head;
    let mut close = false;
    loop {
        if buf.len() == buf.capacity() {
            if buf.len() >= MAX_HEAD {
                return;
            }
            buf.reserve(buf.capacity());
        }
        let filled = buf.len();
        let (result, slice) = stream.read(buf.slice_mut(filled..)).await;
        buf = slice.into_inner();
        match result {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut pos = 0;
        loop {
            match &mut state {
                Body::Head => {
                    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    let mut request = httparse::Request::new(&mut headers);
                    match request.parse(&buf[pos..]) {
                        Ok(httparse::Status::Complete(len)) => {
                            let framing = framing(&request);
                            close |= wants_close(&request);
                            pos += len;
                            out.extend_from_slice(&answer);
                            state = match framing {
                                None => return,
                                Some(Body::Length(0)) => Body::Head,
                                Some(other) => other,
                            };
                            if close {
                                break;
                            }
                        }
                        Ok(httparse::Status::Partial) => break,
                        Err(_) => return,
                    }
                }
                Body::Length(left) => {
                    let take = (buf.len() - pos).min(*left as usize);
                    pos += take;
                    *left -= take as u64;
                    if *left > 0 {
                        break;
                    }
                    state = Body::Head;
                }
                Body::Chunked(decoder) => match decoder.decode(&buf[pos..]) {
                    Ok(decoded) => {
                        pos += decoded.consumed;
                        if decoded.done {
                            state = Body::Head;
                        } else if decoded.consumed == 0 && decoded.data.is_none() {
                            break;
                        }
                    }
                    Err(_) => return,
                },
            }
            if pos == buf.len() {
                break;
            }
        }
        buf.drain(..pos);
        if !out.is_empty() {
            if let Some(delay) = delay {
                monoio::time::sleep(delay).await;
            }
            let (result, back) = stream.write_all(out).await;
            out = back;
            out.clear();
            if result.is_err() || close {
                return;
            }
        }
    }
}

/// The body that follows a request head; `None` for an unsupported coding.
fn framing(request: &httparse::Request) -> Option<Body> {
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Some(Body::Chunked(ChunkedDecoder::new()));
        }
        if header.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(header.value)
                .ok()?
                .trim()
                .parse()
                .ok()?;
            return Some(Body::Length(n));
        }
    }
    Some(Body::Head)
}

fn wants_close(request: &httparse::Request) -> bool {
    request.version == Some(0)
        || request.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case("connection")
                && std::str::from_utf8(h.value)
                    .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
        })
}
