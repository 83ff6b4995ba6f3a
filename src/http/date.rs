//! The `Date` field every response carries (RFC 9110 §6.6.1): the gateway's
//! own answers (errors, stock responses, preflights) always, and relayed
//! responses whose back end sent none ("a recipient with a clock ... MUST ...
//! append" one before forwarding).
//!
//! The value is an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), formatted
//! once per second per thread and copied from that cache otherwise, so a
//! response pays one clock read and a 37-byte copy. The formatter itself is
//! pure (seconds in, bytes out).

use crate::time::calendar::civil_from_days;
use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// `Date: ` + IMF-fixdate + CRLF.
const FIELD_LEN: usize = 37;
const DAY_NAMES: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
const MONTH_NAMES: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

thread_local! {
    /// The second last formatted and its field line.
    static CACHE: Cell<(u64, [u8; FIELD_LEN])> = const { Cell::new((u64::MAX, [0; FIELD_LEN])) };
}

/// Appends `Date: <now>\r\n`.
pub fn write_date_field(out: &mut Vec<u8>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let field = CACHE.with(|cache| {
        let (second, field) = cache.get();
        if second == now {
            return field;
        }
        let field = date_field(now);
        cache.set((now, field));
        field
    });
    out.extend_from_slice(&field);
}

/// The `Date` field line for `secs` seconds after the Unix epoch.
fn date_field(secs: u64) -> [u8; FIELD_LEN] {
    let days = secs / 86_400;
    let in_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    let (year, month, day) = (year.max(0) as u64, u64::from(month), u64::from(day));
    let (h, m, s) = (in_day / 3600, in_day / 60 % 60, in_day % 60);
    let mut field = [0u8; FIELD_LEN];
    field[..6].copy_from_slice(b"Date: ");
    field[6..9].copy_from_slice(DAY_NAMES[((days + 4) % 7) as usize]);
    field[9..11].copy_from_slice(b", ");
    two_digits(&mut field[11..13], day);
    field[13] = b' ';
    field[14..17].copy_from_slice(MONTH_NAMES[(month - 1) as usize]);
    field[17] = b' ';
    let year = year.min(9999);
    two_digits(&mut field[18..20], year / 100);
    two_digits(&mut field[20..22], year % 100);
    field[22] = b' ';
    two_digits(&mut field[23..25], h);
    field[25] = b':';
    two_digits(&mut field[26..28], m);
    field[28] = b':';
    two_digits(&mut field[29..31], s);
    field[31..37].copy_from_slice(b" GMT\r\n");
    field
}

fn two_digits(out: &mut [u8], n: u64) {
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

#[cfg(test)]
mod tests {
    use super::*;

    // The field is an IMF-fixdate: RFC 9110's own example, the epoch, a leap day.
    #[test]
    fn formats_imf_fixdate() {
        assert_eq!(
            [784_111_777, 0, 951_782_400]
                .map(|s| String::from_utf8(date_field(s).to_vec()).unwrap()),
            [
                "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
                "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
                "Date: Tue, 29 Feb 2000 00:00:00 GMT\r\n",
            ]
        );
    }

    // The cached writer writes one well-formed field line.
    #[test]
    fn writes_one_field_line() {
        let mut out = Vec::new();
        write_date_field(&mut out);
        assert!(out.starts_with(b"Date: ") && out.ends_with(b" GMT\r\n") && out.len() == FIELD_LEN);
    }
}
