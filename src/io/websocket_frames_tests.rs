//! Rules of the frame-boundary tracker, byte by byte.

use super::*;

/// A frame: FIN set, `opcode`, masked with a fixed key when `masked`, and
/// `len` payload bytes, in the shortest length form RFC 6455 allows.
fn frame(opcode: u8, masked: bool, len: usize) -> Vec<u8> {
    let mask_bit = if masked { 0x80 } else { 0 };
    let mut out = vec![0x80 | opcode];
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xffff {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if masked {
        out.extend_from_slice(&[1, 2, 3, 4]);
    }
    out.extend((0..len).map(|i| i as u8));
    out
}

/// Feeds `bytes` one at a time; returns after which bytes (1-based counts)
/// the tracker stood at a boundary.
fn boundaries_byte_by_byte(bytes: &[u8]) -> Vec<usize> {
    let mut tracker = FrameTracker::new();
    let mut at = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        tracker.feed(std::slice::from_ref(b));
        if tracker.at_boundary() {
            at.push(i + 1);
        }
    }
    at
}

// A fresh tracker stands between frames.
#[test]
fn starts_at_a_boundary() {
    assert!(FrameTracker::new().at_boundary());
}

// With the 7-bit length form, the boundary is after header and payload only.
#[test]
fn seven_bit_length_fed_byte_by_byte() {
    let f = frame(0x1, false, 125);
    assert_eq!(boundaries_byte_by_byte(&f), vec![f.len()]);
}

// With the 16-bit length form (126), headers split across reads included.
#[test]
fn sixteen_bit_length_fed_byte_by_byte() {
    let f = frame(0x2, true, 300);
    assert_eq!(f.len(), 2 + 2 + 4 + 300);
    assert_eq!(boundaries_byte_by_byte(&f), vec![f.len()]);
}

// With the 64-bit length form (127), headers split across reads included.
#[test]
fn sixty_four_bit_length_fed_byte_by_byte() {
    let f = frame(0x2, false, 70_000);
    assert_eq!(f.len(), 2 + 8 + 70_000);
    assert_eq!(boundaries_byte_by_byte(&f), vec![f.len()]);
}

// A header cut anywhere (after 1 .. 13 of its 14 bytes) leaves the tracker
// inside the frame, and the rest in one read reaches the boundary.
#[test]
fn header_cut_at_every_byte() {
    let f = frame(0x2, true, 70_000);
    for cut in 1..14 {
        let mut tracker = FrameTracker::new();
        tracker.feed(&f[..cut]);
        assert!(!tracker.at_boundary(), "cut after {cut}");
        tracker.feed(&f[cut..]);
        assert!(tracker.at_boundary(), "cut after {cut}");
    }
}

// Empty frames (a masked ping, an unmasked pong) end with their header.
#[test]
fn empty_frames_end_with_their_header() {
    let mut both = frame(0x9, true, 0);
    both.extend(frame(0xa, false, 0));
    assert_eq!(boundaries_byte_by_byte(&both), vec![6, 8]);
}

// Several frames in one read: `feed_to_boundary` stops at the end of the first.
#[test]
fn feed_to_boundary_stops_after_the_first_frame() {
    let first = frame(0x1, false, 200);
    let mut bytes = first.clone();
    bytes.extend(frame(0x1, true, 3));
    let mut tracker = FrameTracker::new();
    assert_eq!(tracker.feed_to_boundary(&bytes), first.len());
    assert!(tracker.at_boundary());
    assert_eq!(tracker.feed_to_boundary(&bytes[first.len()..]), 9);
    assert!(tracker.at_boundary());
}

// Fragments of a message are frames of their own: the boundary comes after
// each (a control frame may go between them).
#[test]
fn fragments_are_boundaries() {
    let mut first = frame(0x1, false, 10);
    first[0] &= 0x7f; // FIN clear: more fragments follow
    let mut bytes = first;
    bytes.extend(frame(0x0, false, 10));
    assert_eq!(boundaries_byte_by_byte(&bytes), vec![12, 24]);
}

// A Close frame going through is noticed; data frames are not Close frames.
#[test]
fn close_frames_are_noticed() {
    let mut tracker = FrameTracker::new();
    tracker.feed(&frame(0x1, true, 5));
    assert!(!tracker.close_seen());
    tracker.feed(&frame(0x8, true, 2));
    assert!(tracker.close_seen());
}

// A Close frame counts as seen only once its payload has gone through too.
#[test]
fn close_counts_once_its_payload_is_through() {
    let close = frame(0x8, true, 2);
    let mut tracker = FrameTracker::new();
    tracker.feed(&close[..close.len() - 1]);
    assert!(!tracker.close_seen() && !tracker.at_boundary());
    tracker.feed(&close[close.len() - 1..]);
    assert!(tracker.close_seen() && tracker.at_boundary());
}

// The Close the gateway writes to a client: 1001, not masked.
#[test]
fn close_to_client_is_unmasked_1001() {
    assert_eq!(close_to_client(GOING_AWAY), [0x88, 0x02, 0x03, 0xe9]);
}

// The Close the gateway writes to a back end: masked, and 1001 once unmasked.
#[test]
fn close_to_server_is_masked_1001() {
    let f = close_to_server(GOING_AWAY, [0xa1, 0xb2, 0xc3, 0xd4]);
    assert_eq!(&f[..6], &[0x88, 0x82, 0xa1, 0xb2, 0xc3, 0xd4]);
    assert_eq!([f[6] ^ 0xa1, f[7] ^ 0xb2], [0x03, 0xe9]);
    let mut tracker = FrameTracker::new();
    tracker.feed(&f);
    assert!(tracker.at_boundary() && tracker.close_seen());
}
