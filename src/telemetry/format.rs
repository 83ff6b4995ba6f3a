//! The access log's value formats, shared by everything that writes a line
//! or a JSON fragment: JSON strings, RFC 3339 timestamps with milliseconds,
//! durations in milliseconds, and a per-worker clock that formats each
//! timestamp once per millisecond.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Writes `s` as a quoted JSON string. `"`, `\`, control characters and DEL
/// are escaped; bytes that are not valid UTF-8 become `\u00XX`, one per byte,
/// so the output is always valid JSON and valid UTF-8.
pub fn write_json_str(out: &mut Vec<u8>, s: &[u8]) {
    fn escape(out: &mut Vec<u8>, b: u8) {
        let hex = |n: u8| b"0123456789abcdef"[usize::from(n)];
        out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 0xf)]);
    }
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        let valid = chunk.valid().as_bytes();
        let mut copied = 0;
        for (i, &b) in valid.iter().enumerate() {
            let short = match b {
                b'"' | b'\\' => b,
                b'\n' => b'n',
                b'\r' => b'r',
                b'\t' => b't',
                0..=0x1f | 0x7f => 0,
                _ => continue,
            };
            out.extend_from_slice(&valid[copied..i]);
            copied = i + 1;
            match short {
                0 => escape(out, b),
                _ => out.extend_from_slice(&[b'\\', short]),
            }
        }
        out.extend_from_slice(&valid[copied..]);
        chunk.invalid().iter().for_each(|&b| escape(out, b));
    }
    out.push(b'"');
}

/// Writes `t` as RFC 3339 UTC with milliseconds, e.g. `2026-11-22T15:04:05.123Z`
/// (clamped to 1970..=9999, the range humantime formats).
pub fn write_rfc3339_millis(out: &mut Vec<u8>, t: SystemTime) {
    let last = UNIX_EPOCH + Duration::from_millis(253_402_300_799_999);
    let t = t.clamp(UNIX_EPOCH, last);
    // Writing into a Vec cannot fail, and the clamped time is in range.
    let _ = write!(out, "{}", humantime::format_rfc3339_millis(t));
}

/// Writes `d` in milliseconds with microsecond precision, truncated, never an
/// exponent: 1 234 567 ns → `1.234`.
pub fn write_millis(out: &mut Vec<u8>, d: Duration) {
    let micros = d.as_micros();
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(digits.format(micros / 1000).as_bytes());
    let frac = (micros % 1000) as u16;
    out.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
}

/// RFC 3339 timestamps for one worker's lines: the date and time of day are
/// formatted once per second, only the milliseconds per line.
#[derive(Debug, Default)]
pub struct LogClock {
    second: std::cell::Cell<u64>,
    /// `YYYY-MM-DDTHH:MM:SS` of `second`.
    text: std::cell::RefCell<Vec<u8>>,
}

impl LogClock {
    /// Writes `t` like [`write_rfc3339_millis`], reusing the formatted second.
    pub fn write(&self, out: &mut Vec<u8>, t: SystemTime) {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let second = since.as_secs();
        let mut text = self.text.borrow_mut();
        if text.is_empty() || second != self.second.get() {
            text.clear();
            write_rfc3339_millis(&mut text, UNIX_EPOCH + Duration::from_secs(second));
            text.truncate(19);
            self.second.set(second);
        }
        out.extend_from_slice(&text);
        let millis = since.subsec_millis() as u16;
        out.extend_from_slice(&[
            b'.',
            b'0' + (millis / 100) as u8,
            b'0' + (millis / 10 % 10) as u8,
            b'0' + (millis % 10) as u8,
            b'Z',
        ]);
    }
}

#[cfg(test)]
mod clock_tests {
    use super::*;

    // The cached clock writes exactly what the plain formatter writes.
    #[test]
    fn log_clock_matches_formatter() {
        let clock = LogClock::default();
        let t = UNIX_EPOCH + Duration::from_millis(1_795_362_446_828);
        let (mut cached, mut plain) = (Vec::new(), Vec::new());
        clock.write(&mut cached, t);
        clock.write(&mut cached, t);
        write_rfc3339_millis(&mut plain, t);
        write_rfc3339_millis(&mut plain, t);
        assert_eq!(cached, plain);
    }
}

#[cfg(test)]
mod value_tests {
    use super::*;

    fn render(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).unwrap()
    }

    // write_json_str escapes quotes, backslashes, control chars, DEL and each invalid byte.
    #[test]
    fn json_strings_are_escaped() {
        let got = render(|out| write_json_str(out, b"a\"b\\c\n\r\t\x01\x7f\xff\xc3\xa9\xe2\x82"));
        assert_eq!(got, r#""a\"b\\c\n\r\t\u0001\u007f\u00ffé\u00e2\u0082""#);
    }

    // Durations are milliseconds with microseconds, truncated and zero-padded.
    #[test]
    fn millis_truncate_to_microseconds() {
        let ms = |nanos| render(|out| write_millis(out, Duration::from_nanos(nanos)));
        assert_eq!([ms(1_234_567), ms(5_999)], ["1.234", "0.005"]);
    }

    // Timestamps are RFC 3339 UTC with milliseconds.
    #[test]
    fn timestamps_are_rfc3339_millis() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_359_845_123);
        let got = render(|out| write_rfc3339_millis(out, t));
        assert_eq!(got, "2026-11-22T15:04:05.123Z");
    }
}
