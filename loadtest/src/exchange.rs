//! One request and its response on a connection: send the bytes, parse the
//! answer's head with the gateway's own parser, and read its body to its end
//! (Content-Length, chunked with the gateway's decoder, or until close), so the
//! next request on the connection starts at the right byte.

use crate::transport::Connection;
use portcullis::http::chunked::ChunkedDecoder;
use portcullis::http::response::{parse_response, response_header_storage, ParsedResponse};
use portcullis::http::BodyFraming;

/// Why a request got no complete answer. The order is the report's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Connect,
    Tls,
    Write,
    Read,
    /// The server closed the connection before the answer was complete.
    Closed,
    /// An answer that is not valid HTTP/1.1.
    BadResponse,
    Timeout,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Connect,
        ErrorKind::Tls,
        ErrorKind::Write,
        ErrorKind::Read,
        ErrorKind::Closed,
        ErrorKind::BadResponse,
        ErrorKind::Timeout,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Write => "write",
            ErrorKind::Read => "read",
            ErrorKind::Closed => "closed",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::Timeout => "timeout",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A complete answer.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    pub status: u16,
    /// The connection can carry another request.
    pub reusable: bool,
}

/// Sends `request` (given back for reuse) and reads the whole answer.
pub async fn exchange(
    conn: &mut Connection,
    request: Vec<u8>,
    request_is_head: bool,
) -> (Result<Answer, ErrorKind>, Vec<u8>) {
    let (written, request) = conn.write_all(request).await;
    if written.is_err() {
        return (Err(ErrorKind::Write), request);
    }
    (read_answer(conn, request_is_head).await, request)
}

/// What one look at the pending bytes found.
enum HeadStep {
    Final {
        status: u16,
        body: BodyFraming,
        close: bool,
        len: usize,
    },
    Interim(usize),
    Partial,
}

/// Parses the pending bytes. Kept out of `read_answer` so that the header
/// storage (4 KiB) is not part of its future's state, which every request
/// moves.
fn parse_head(conn: &Connection, request_is_head: bool) -> Result<HeadStep, ErrorKind> {
    let mut storage = response_header_storage();
    match parse_response(conn.pending(), request_is_head, &mut storage) {
        Ok(ParsedResponse::Final(head)) => Ok(HeadStep::Final {
            status: head.status,
            body: head.body,
            close: head.close,
            len: head.len,
        }),
        Ok(ParsedResponse::Interim(len)) => Ok(HeadStep::Interim(len)),
        Ok(ParsedResponse::Partial) => Ok(HeadStep::Partial),
        Err(_) => Err(ErrorKind::BadResponse),
    }
}

async fn read_answer(conn: &mut Connection, request_is_head: bool) -> Result<Answer, ErrorKind> {
    let (status, body, close) = loop {
        match parse_head(conn, request_is_head)? {
            HeadStep::Final {
                status,
                body,
                close,
                len,
            } => {
                conn.consume(len);
                break (status, body, close);
            }
            HeadStep::Interim(len) => conn.consume(len),
            HeadStep::Partial => read_some(conn).await?,
        }
    };
    match body {
        BodyFraming::None => {}
        BodyFraming::Length(mut left) => loop {
            let take = (conn.pending().len() as u64).min(left);
            conn.consume(take as usize);
            left -= take;
            if left == 0 {
                break;
            }
            read_some(conn).await?;
        },
        BodyFraming::Chunked => {
            let mut decoder = ChunkedDecoder::new();
            loop {
                let decoded = decoder
                    .decode(conn.pending())
                    .map_err(|_| ErrorKind::BadResponse)?;
                conn.consume(decoded.consumed);
                if decoded.done {
                    break;
                }
                if decoded.consumed == 0 && decoded.data.is_none() {
                    read_some(conn).await?;
                }
            }
        }
        BodyFraming::UntilClose => loop {
            let pending = conn.pending().len();
            conn.consume(pending);
            match conn.read_more().await {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => return Err(ErrorKind::Read),
            }
        },
    }
    Ok(Answer {
        status,
        reusable: !close,
    })
}

async fn read_some(conn: &mut Connection) -> Result<(), ErrorKind> {
    match conn.read_more().await {
        Ok(0) => Err(ErrorKind::Closed),
        Ok(_) => Ok(()),
        Err(_) => Err(ErrorKind::Read),
    }
}
