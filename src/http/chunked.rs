//! Chunked transfer coding (RFC 9112 §7.1): a strict, incremental decoder and a chunk encoder.
//!
//! Sits in the http layer: the request-body relay (client → back end) and the response relay
//! (back end → client) decode every chunked body with it and re-encode the data they forward, so
//! the grammar is enforced byte by byte and anything ambiguous is an error (no smuggling). It must
//! not allocate while decoding, panic on any input, or consume a byte past the end of the body:
//! the bytes that follow belong to the next message on the connection.

use std::ops::Range;

/// Most bytes a chunk-size line (with extensions) or a trailer line may hold before its CRLF.
pub const MAX_LINE: usize = 4096;
/// The trailer section, all its CRLFs included, may hold at most this many bytes.
pub const MAX_TRAILER: usize = 8192;
/// The last chunk with an empty trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";
/// More significant hex digits than this cannot fit a u64.
const MAX_SIZE_DIGITS: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedError {
    InvalidSize,       // chunk-size not 1*HEXDIG, or junk after it
    SizeOverflow,      // chunk size does not fit u64 / more than 16 significant hex digits
    InvalidExtension,  // malformed chunk-ext
    InvalidLineEnding, // bare CR, bare LF, or missing CRLF after chunk data
    LineTooLong,       // a chunk-size line or a trailer line over MAX_LINE bytes
    InvalidTrailer,    // malformed trailer field line, or trailer section over MAX_TRAILER bytes
}

impl std::fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::InvalidSize => "invalid chunk size",
            Self::SizeOverflow => "chunk size too large",
            Self::InvalidExtension => "invalid chunk extension",
            Self::InvalidLineEnding => "invalid line ending in chunked body",
            Self::LineTooLong => "chunk line too long",
            Self::InvalidTrailer => "invalid trailer section",
        })
    }
}

impl std::error::Error for ChunkedError {}

/// What one call to `decode` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Bytes of `input` consumed (framing and data alike). The caller drops them.
    pub consumed: usize,
    /// Chunk data found, as a range of `input` (always inside 0..consumed). At most one range per call.
    pub data: Option<Range<usize>>,
    /// The last chunk and the trailer section (with its final CRLF) have been consumed: the body is complete.
    pub done: bool,
}

/// Where the decoder is; one step per framing byte, data is taken in bulk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    SizeStart, // before the first hex digit of chunk-size
    Size,            // in the hex digits
    SizeWs,          // BWS after the digits: ";" must follow
    ExtNameStart,    // after ";": BWS, then an extension name
    ExtName,         // in an extension name
    ExtNameWs,       // BWS after a name: ";" or "=" must follow
    ExtValueStart,   // after "=": BWS, then a token or quoted-string
    ExtToken,        // in a token value
    ExtQuoted,       // in a quoted-string value
    ExtQuotedEscape, // after a backslash in a quoted-string
    ExtValueEnd,     // after a closing DQUOTE
    ExtValueWs,      // BWS after a value: ";" must follow
    SizeLf,          // CR of the size line seen: LF must follow
    Data,            // in chunk data (`remaining` bytes left)
    DataCr,          // after chunk data: CR must follow
    DataLf,          // LF must follow
    TrailerStart,    // at the start of a trailer line or of the final empty line
    TrailerName,     // in a field name
    TrailerValue,    // after the colon
    TrailerLf,       // CR of a trailer line seen: LF must follow
    FinalLf,         // CR of the final empty line seen: LF must follow
    Done,
    Failed(ChunkedError),
}

/// Incremental chunked-body decoder; holds only counters, never the bytes.
#[derive(Debug, Clone, Default)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,             // value of the chunk-size being read
    size_significant: u32, // its hex digits after any leading zeros
    remaining: u64,        // chunk-data bytes left in the current chunk
    line_len: usize,       // bytes of the current size or trailer line (its CR resets it)
    in_trailer: bool,      // the last chunk has been read
    trailer_len: usize,    // bytes of the trailer section so far, CRLFs included
    body_bytes: u64,
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decode as much of `input` as possible. Returns after at most one data range, or when the input is used up,
    /// or when done. A call that returns consumed == 0 && data == None && !done means "need more bytes"
    /// (the caller reads more and calls again with the unconsumed bytes followed by new bytes).
    /// After `done`, further calls return consumed 0 and done true. Errors are sticky; a call that found
    /// data before an error returns that data first, and the error on the next call.
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, ChunkedError> {
        if let State::Failed(error) = self.state {
            return Err(error);
        }
        let (mut pos, mut data) = (0, None);
        while let Some(&byte) = input.get(pos) {
            match self.state {
                State::Done => break,
                State::Data if data.is_some() => break,
                State::Data => {
                    // `pos` indexes a byte of `input`, so this neither underflows nor passes its end.
                    let take = self.remaining.min((input.len() - pos) as u64) as usize;
                    data = Some(pos..pos + take);
                    pos += take;
                    self.remaining = self.remaining.saturating_sub(take as u64);
                    self.body_bytes = self.body_bytes.saturating_add(take as u64);
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                }
                _ => match self.step(byte) {
                    Ok(()) => pos += 1,
                    Err(error) => {
                        self.state = State::Failed(error);
                        if data.is_none() {
                            return Err(error);
                        }
                        break; // the data found first is delivered; the error comes next call
                    }
                },
            }
        }
        Ok(Decoded {
            consumed: pos,
            data,
            done: self.is_done(),
        })
    }

    /// Total chunk-data bytes decoded so far (the body length; the caller enforces its body limit with it).
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consume one framing byte.
    fn step(&mut self, byte: u8) -> Result<(), ChunkedError> {
        use {ChunkedError::*, State::*};
        // Bytes of a size or trailer line before its CR count against MAX_LINE; an LF there is bare.
        let in_line = !matches!(self.state, SizeLf | DataCr | DataLf | TrailerLf | FinalLf);
        if in_line && byte == b'\n' {
            return Err(InvalidLineEnding);
        }
        if in_line {
            self.line_len = if byte == b'\r' { 0 } else { self.line_len + 1 };
            if self.line_len > MAX_LINE {
                return Err(LineTooLong);
            }
        }
        if self.in_trailer {
            self.trailer_len += 1;
            if self.trailer_len > MAX_TRAILER {
                return Err(InvalidTrailer);
            }
        }
        let is_ws = byte == b' ' || byte == b'\t';
        self.state = match (self.state, byte) {
            (SizeStart | Size, _) if byte.is_ascii_hexdigit() => {
                self.push_size_digit(byte)?;
                Size
            }
            (Size | ExtName | ExtToken | ExtValueEnd, b'\r') => SizeLf,
            (Size | SizeWs | ExtName | ExtNameWs | ExtToken | ExtValueEnd | ExtValueWs, b';') => {
                ExtNameStart
            }
            (Size | SizeWs, _) if is_ws => SizeWs,
            (SizeStart | Size | SizeWs, _) => return Err(InvalidSize),
            (ExtNameStart | ExtNameWs | ExtValueStart | ExtValueWs, _) if is_ws => self.state,
            (ExtNameStart | ExtName, _) if is_token(byte) => ExtName,
            (ExtName, _) if is_ws => ExtNameWs,
            (ExtName | ExtNameWs, b'=') => ExtValueStart,
            (ExtValueStart | ExtToken, _) if is_token(byte) => ExtToken,
            (ExtToken | ExtValueEnd, _) if is_ws => ExtValueWs,
            (ExtValueStart, b'"') => ExtQuoted,
            (ExtQuoted, b'"') => ExtValueEnd,
            (ExtQuoted, b'\\') => ExtQuotedEscape,
            (ExtQuoted | ExtQuotedEscape, _) if is_field_byte(byte) => ExtQuoted,
            (SizeLf, b'\n') => self.end_size_line(),
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => SizeStart,
            (TrailerStart, b'\r') => FinalLf,
            (TrailerStart | TrailerName, _) if is_token(byte) => TrailerName,
            (TrailerName, b':') => TrailerValue,
            (TrailerValue, b'\r') => TrailerLf,
            (TrailerValue, _) if is_field_byte(byte) => TrailerValue,
            (TrailerLf, b'\n') => TrailerStart,
            (FinalLf, b'\n') => Done,
            (SizeLf | DataCr | DataLf | TrailerLf | FinalLf, _) => return Err(InvalidLineEnding),
            (TrailerStart | TrailerName | TrailerValue, _) => return Err(InvalidTrailer),
            _ => return Err(InvalidExtension),
        };
        Ok(())
    }

    /// One more hex digit of chunk-size: at most 16 significant digits, and the value fits u64.
    fn push_size_digit(&mut self, byte: u8) -> Result<(), ChunkedError> {
        use ChunkedError::*;
        let digit = char::from(byte).to_digit(16).ok_or(InvalidSize)?;
        if self.size_significant > 0 || digit != 0 {
            self.size_significant += 1;
        }
        if self.size_significant > MAX_SIZE_DIGITS {
            return Err(SizeOverflow);
        }
        let shifted = self.size.checked_mul(16).ok_or(SizeOverflow)?;
        self.size = shifted.checked_add(u64::from(digit)).ok_or(SizeOverflow)?;
        Ok(())
    }

    /// The chunk-size line's LF: start the chunk data, or the trailer section after the last chunk.
    fn end_size_line(&mut self) -> State {
        let size = std::mem::take(&mut self.size);
        (self.size_significant, self.remaining) = (0, size);
        self.in_trailer = size == 0;
        if self.in_trailer {
            State::TrailerStart
        } else {
            State::Data
        }
    }
}

/// tchar (RFC 9110 §5.6.2).
fn is_token(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// HTAB / SP / VCHAR / obs-text: field-value, qdtext (less DQUOTE and backslash), quoted-pair bytes.
fn is_field_byte(byte: u8) -> bool {
    matches!(byte, b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff)
}

/// Append one chunk (size line in lowercase hex, CRLF, data, CRLF) to `out`. Does nothing for empty data
/// (an empty chunk would end the body).
pub fn encode_chunk(out: &mut Vec<u8>, data: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let len = data.len();
    if len == 0 {
        return;
    }
    let nibbles = (usize::BITS - len.leading_zeros()).div_ceil(4);
    out.reserve(nibbles as usize + data.len() + 4);
    for shift in (0..nibbles).rev() {
        out.push(HEX[(len >> (shift * 4)) & 0xf]);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::ChunkedError::*;
    use super::*;

    type Outcome = Result<(Vec<u8>, usize, bool), ChunkedError>;
    type Answer = Result<(usize, Option<Range<usize>>, bool), ChunkedError>;

    /// Feed `pieces` in turn, re-presenting unconsumed bytes each time: (data, consumed, done).
    fn feed<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
        let mut decoder = ChunkedDecoder::new();
        let (mut data, mut pending, mut consumed) = (vec![], vec![], 0);
        for piece in pieces {
            pending.extend_from_slice(piece);
            // Until a call answers "need more" (consumed 0), as the caller does.
            while let found @ Decoded { consumed: 1.., .. } = decoder.decode(&pending)? {
                data.extend_from_slice(found.data.map_or(&[][..], |range| &pending[range]));
                pending.drain(..found.consumed);
                consumed += found.consumed;
            }
        }
        Ok((data, consumed, decoder.is_done()))
    }

    fn decode_all(input: &[u8]) -> Outcome {
        feed([input])
    }

    const BODY: &[u8] =
        b"5;a=\"x\\\"y\"\r\nhello\r\nB\r\n, chunked w\r\n3 ;n\r\norl\r\n0\r\nT: v\r\n\r\n";

    /// (rule, complete body, its data): each body is accepted whole, and nothing else is left.
    #[rustfmt::skip]
    const ACCEPTED: &[(&str, &[u8], &[u8])] = &[
        ("a simple body decodes", b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
        ("hex digits in either case", b"a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n", b"01234567890123456789"),
        ("leading zeros are not significant", b"00000000000000000005\r\nhello\r\n0\r\n\r\n", b"hello"),
        ("the last chunk may have several zeros", b"000\r\n\r\n", b""),
        ("token extensions with BWS", b"5 ;a\t; b = c;d\r\nhello\r\n0;e\r\n\r\n", b"hello"),
        ("quoted extensions with pairs", b"5;a=\"q \\\" \\\\ x\";b=\"\"\r\nhello\r\n0\r\n\r\n", b"hello"),
        ("obs-text in a quoted extension", b"5;a=\"\xe9\"\r\nhello\r\n0\r\n\r\n", b"hello"),
        ("trailers are validated and discarded", b"0\r\nA: b c\r\nE:\r\nX-Y:\tz\xff \r\n\r\n", b""),
    ];

    /// (rule, input, error): each input is rejected with that error.
    #[rustfmt::skip]
    const REJECTED: &[(&str, &[u8], ChunkedError)] = &[
        ("no 0x prefix", b"0x5\r\n", InvalidSize),
        ("no sign", b"-5\r\n", InvalidSize),
        ("no whitespace before the size", b" 5\r\n", InvalidSize),
        ("whitespace after the size needs a ;", b"5 \r\n", InvalidSize),
        ("not a hex digit", b"g\r\n", InvalidSize),
        ("an empty size", b"\r\n", InvalidSize),
        ("17 significant digits overflow", b"10000000000000000\r\n", SizeOverflow),
        ("17 F overflow", b"FFFFFFFFFFFFFFFFF\r\n", SizeOverflow),
        ("an extension needs a name", b"5;\r\n", InvalidExtension),
        ("= needs a value", b"5;a=\r\n", InvalidExtension),
        ("whitespace inside a name", b"5;a b\r\n", InvalidExtension),
        ("whitespace at the end of a line", b"5;a \r\n", InvalidExtension),
        ("an unterminated quoted value", b"5;a=\"x\r\n", InvalidExtension),
        ("junk after a quoted value", b"5;a=\"x\"y\r\n", InvalidExtension),
        ("a control byte in a quoted value", b"5;a=\"\x01\"\r\n", InvalidExtension),
        ("bare LF after the size", b"5\nhello\r\n", InvalidLineEnding),
        ("bare CR after the size", b"5\rhello\r\n", InvalidLineEnding),
        ("CRLF must follow the data", b"5\r\nhelloX\r\n", InvalidLineEnding),
        ("LF alone after the data", b"5\r\nhello\n0\r\n\r\n", InvalidLineEnding),
        ("bare LF in a trailer", b"0\r\nA: v\n\r\n", InvalidLineEnding),
        ("bare LF ending the trailers", b"0\r\n\n", InvalidLineEnding),
        ("no space before a trailer colon", b"0\r\nA : v\r\n\r\n", InvalidTrailer),
        ("no trailer obs-fold", b"0\r\nA: v\r\n more\r\n\r\n", InvalidTrailer),
        ("no NUL in a trailer", b"0\r\nA: a\0b\r\n\r\n", InvalidTrailer),
        ("a trailer needs a colon", b"0\r\nA\r\n\r\n", InvalidTrailer),
    ];

    #[test]
    fn accepted_bodies_decode_whole() {
        for (rule, input, data) in ACCEPTED {
            let whole = Ok((data.to_vec(), input.len(), true));
            assert_eq!(decode_all(input), whole, "{rule}");
        }
    }

    #[test]
    fn rejected_inputs_give_their_error() {
        for (rule, input, error) in REJECTED {
            assert_eq!(decode_all(input), Err(*error), "{rule}");
        }
    }

    // Feeding a body byte by byte gives the same data and the same end.
    #[test]
    fn byte_by_byte_feeding_changes_nothing() {
        assert_eq!(feed(BODY.chunks(1)), decode_all(BODY));
    }

    // Splitting a body at any byte boundary gives the same data and the same end.
    #[test]
    fn any_split_point_changes_nothing() {
        let whole = decode_all(BODY);
        for at in 0..=BODY.len() {
            assert_eq!(feed([&BODY[..at], &BODY[at..]]), whole, "split at {at}");
        }
    }

    // (rule, the inputs one decoder is given in turn, its answer to the last one)
    #[test]
    fn call_sequences_give_their_last_answer() {
        #[rustfmt::skip]
        let cases: [(&str, &[&[u8]], Answer); 9] = [
            ("no input means need more", &[b""], Ok((0, None, false))),
            ("a partial size line is consumed without its CRLF", &[b"1f;ext"], Ok((6, None, false))),
            ("a partial chunk is returned at once", &[b"5\r\nhel"], Ok((6, Some(3..6), false))),
            ("the rest of the chunk follows", &[b"5\r\nhel", b"lo\r\n0\r\n\r\n"], Ok((9, Some(0..2), true))),
            ("16 significant digits fit", &[b"FFFFFFFFFFFFFFFF\r\nab"], Ok((20, Some(18..20), false))),
            ("bytes after the final CRLF are left", &[b"0\r\n\r\nGET / HTTP/1.1\r\n"], Ok((5, None, true))),
            ("after done, a call consumes nothing", &[LAST_CHUNK, b"5\r\n"], Ok((0, None, true))),
            ("data found before an error is returned first", &[b"1\r\na\r\nX"], Ok((6, Some(3..4), false))),
            ("after an error, every call returns it", &[b"x", b"5\r\n"], Err(InvalidSize)),
        ];
        for (rule, inputs, last) in cases {
            let mut decoder = ChunkedDecoder::new();
            let answers = inputs.iter().map(|input| decoder.decode(input));
            let last_answer = answers
                .last()
                .map(|a| a.map(|d| (d.consumed, d.data, d.done)));
            assert_eq!(last_answer, Some(last), "{rule}");
        }
    }

    // Lines are capped at MAX_LINE bytes before their CRLF (checked before it arrives), and
    // the trailer section at MAX_TRAILER bytes even when each line is short.
    #[test]
    fn lines_and_trailer_section_are_capped() {
        let long = "a".repeat(MAX_LINE - 1);
        let short = format!("A: {}\r\n", "v".repeat(3000));
        #[rustfmt::skip]
        let cases = [
            (format!("1;{long}"), Err(LineTooLong)),
            (format!("5;{}\r\nhello\r\n0\r\n\r\n", &long[1..]), Ok(true)),
            (format!("0\r\nA:{long}"), Err(LineTooLong)),
            (format!("0\r\n{short}{short}{short}\r\n"), Err(InvalidTrailer)),
        ];
        for (input, done) in cases {
            let outcome = decode_all(input.as_bytes()).map(|r| r.2);
            assert_eq!(outcome, done, "{input:.20}");
        }
    }

    // body_bytes counts the chunk data decoded so far, framing excluded.
    #[test]
    fn body_bytes_counts_chunk_data() {
        let (mut decoder, input) = (ChunkedDecoder::new(), b"5\r\nhello\r\n3\r\nabc\r\n");
        let first = decoder.decode(input).unwrap();
        let _ = decoder.decode(&input[first.consumed..]);
        assert_eq!(decoder.body_bytes(), 8);
    }

    // encode_chunk writes the size in lowercase hex, and nothing for empty data (it would end the body).
    #[test]
    fn encode_chunk_writes_lowercase_hex_and_skips_empty_data() {
        let cases: [(&[u8], &[u8]); 2] = [(b"0123456789", b"a\r\n0123456789\r\n"), (b"", b"")];
        for (data, chunk) in cases {
            let mut out = Vec::new();
            encode_chunk(&mut out, data);
            assert_eq!(out, chunk);
        }
    }

    // Encoded chunks and LAST_CHUNK decode back to the same bytes.
    #[test]
    fn encode_then_decode_round_trips() {
        let parts: [&[u8]; 4] = [b"a", b"", &[7u8; 300], b"0123456789abcdef"];
        let mut wire = Vec::new();
        parts.iter().for_each(|part| encode_chunk(&mut wire, part));
        wire.extend_from_slice(LAST_CHUNK);
        assert_eq!(decode_all(&wire), Ok((parts.concat(), wire.len(), true)));
    }
}
