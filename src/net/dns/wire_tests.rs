//! Rules of reading DNS answers: addresses and their lowest TTL, CNAME
//! chains, answers to other questions, truncation and server errors.

use super::*;
use hickory_proto::op::OpCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::Record;
use std::net::{Ipv4Addr, Ipv6Addr};

fn name(text: &str) -> Name {
    absolute_name(text).unwrap()
}

/// An answer to query `id` for `question` holding `records`.
fn answer(id: u16, question: &str, kind: RecordType, records: Vec<Record>) -> Vec<u8> {
    let mut message = Message::response(id, OpCode::Query);
    message.add_query(Query::query(name(question), kind));
    message.add_answers(records);
    message.to_vec().unwrap()
}

fn a(owner: &str, ttl: u32, ip: [u8; 4]) -> Record {
    Record::from_rdata(name(owner), ttl, RData::A(A(Ipv4Addr::from(ip))))
}

// The addresses of the name come back with the lowest of their TTLs.
#[test]
fn addresses_come_with_their_lowest_ttl() {
    let bytes = answer(
        7,
        "svc.test",
        RecordType::A,
        vec![
            a("svc.test", 30, [10, 0, 0, 1]),
            a("svc.test", 20, [10, 0, 0, 2]),
        ],
    );
    assert_eq!(
        read_answer(&bytes, 7, &name("svc.test"), Family::V4).unwrap(),
        Answer::Found {
            addrs: vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()],
            ttl: Some(20)
        }
    );
}

// A CNAME chain is followed, and its own TTL bounds the answer's.
#[test]
fn cname_chains_are_followed() {
    let alias = Record::from_rdata(name("svc.test"), 5, RData::CNAME(CNAME(name("real.test"))));
    let bytes = answer(
        1,
        "svc.test",
        RecordType::A,
        vec![
            alias,
            a("real.test", 60, [10, 0, 0, 9]),
            a("other.test", 1, [10, 0, 0, 8]),
        ],
    );
    assert_eq!(
        read_answer(&bytes, 1, &name("svc.test"), Family::V4).unwrap(),
        Answer::Found {
            addrs: vec!["10.0.0.9".parse().unwrap()],
            ttl: Some(5)
        }
    );
}

// AAAA answers give IPv6 addresses.
#[test]
fn aaaa_answers_give_ipv6_addresses() {
    let record = Record::from_rdata(name("svc.test"), 9, RData::AAAA(AAAA(Ipv6Addr::LOCALHOST)));
    let bytes = answer(2, "svc.test", RecordType::AAAA, vec![record]);
    assert_eq!(
        read_answer(&bytes, 2, &name("svc.test"), Family::V6).unwrap(),
        Answer::Found {
            addrs: vec!["::1".parse().unwrap()],
            ttl: Some(9)
        }
    );
}

// An answer with another id, name or type is not the answer to our question.
#[test]
fn answers_to_other_questions_are_not_ours() {
    let bytes = answer(3, "svc.test", RecordType::A, vec![]);
    for (id, question, family) in [
        (4, "svc.test", Family::V4),
        (3, "other.test", Family::V4),
        (3, "svc.test", Family::V6),
    ] {
        assert_eq!(
            read_answer(&bytes, id, &name(question), family).unwrap(),
            Answer::NotOurs
        );
    }
}

// A truncated answer asks for TCP; SERVFAIL is an error; NXDOMAIN finds nothing.
#[test]
fn truncation_failures_and_missing_names() {
    let mut message = Message::response(5, OpCode::Query);
    message.add_query(Query::query(name("svc.test"), RecordType::A));
    message.metadata.truncation = true;
    let truncated = message.to_vec().unwrap();
    message.metadata.truncation = false;
    message.metadata.response_code = ResponseCode::ServFail;
    let failed = message.to_vec().unwrap();
    message.metadata.response_code = ResponseCode::NXDomain;
    let missing = message.to_vec().unwrap();
    let read = |bytes: &[u8]| read_answer(bytes, 5, &name("svc.test"), Family::V4);
    assert_eq!(read(&truncated).unwrap(), Answer::Truncated);
    assert!(matches!(read(&failed), Err(WireError::Refused(_))));
    assert_eq!(
        read(&missing).unwrap(),
        Answer::Found {
            addrs: vec![],
            ttl: None
        }
    );
}

// Bytes that are not a DNS message are an error, not a panic.
#[test]
fn garbage_is_malformed() {
    assert!(matches!(
        read_answer(b"\x00\x01garbage", 1, &name("svc.test"), Family::V4),
        Err(WireError::Malformed(_))
    ));
}

// A query encodes the name, the type and recursion, and reads back as itself.
#[test]
fn queries_read_back() {
    let bytes = encode_query(42, &name("svc.test"), Family::V6).unwrap();
    let message = Message::from_vec(&bytes).unwrap();
    assert_eq!(message.metadata.id, 42);
    assert!(message.metadata.recursion_desired);
    assert_eq!(message.queries[0].query_type(), RecordType::AAAA);
}
