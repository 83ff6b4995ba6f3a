//! The client against DNS servers on loopback: TCP after a truncated UDP
//! answer, the next server after one that does not answer.

use super::*;
use hickory_proto::op::{Message, OpCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use std::net::{Ipv4Addr, TcpListener};

/// The answer to `query`: 10.0.0.1 for A questions, with TTL 42, TC set if `truncated`.
fn reply(query: &[u8], truncated: bool) -> Vec<u8> {
    let query = Message::from_vec(query).unwrap();
    let question = query.queries[0].clone();
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.truncation = truncated;
    if question.query_type() == RecordType::A && !truncated {
        let ip = RData::A(A(Ipv4Addr::new(10, 0, 0, 1)));
        reply.add_answer(Record::from_rdata(question.name().clone(), 42, ip));
    }
    reply.add_query(question);
    reply.to_vec().unwrap()
}

/// A server on one loopback port: UDP answers truncated, TCP answers whole.
fn truncating_server() -> SocketAddr {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = tcp.local_addr().unwrap();
    let udp = UdpSocket::bind(addr).unwrap();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 512];
        while let Ok((n, peer)) = udp.recv_from(&mut buffer) {
            let _ = udp.send_to(&reply(&buffer[..n], true), peer);
        }
    });
    std::thread::spawn(move || {
        for mut stream in tcp.incoming().flatten() {
            let mut length = [0u8; 2];
            if stream.read_exact(&mut length).is_err() {
                continue;
            }
            let mut query = vec![0u8; usize::from(u16::from_be_bytes(length))];
            if stream.read_exact(&mut query).is_err() {
                continue;
            }
            let answer = reply(&query, false);
            let mut framed = (answer.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&answer);
            let _ = stream.write_all(&framed);
        }
    });
    addr
}

// A truncated UDP answer is asked again over TCP, whose answer counts.
#[test]
fn truncated_answers_are_asked_again_over_tcp() {
    let server = truncating_server();
    let found = lookup(&[server], "svc.client.test", Duration::from_secs(2)).unwrap();
    assert_eq!(
        found,
        Lookup {
            addrs: vec!["10.0.0.1".parse().unwrap()],
            ttl: Some(42)
        }
    );
}

// A server that does not answer within the timeout is passed over for the next.
#[test]
fn a_silent_server_is_passed_over() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let servers = [silent.local_addr().unwrap(), truncating_server()];
    let found = lookup(&servers, "svc.client.test", Duration::from_millis(200)).unwrap();
    assert_eq!(found.addrs, ["10.0.0.1".parse::<IpAddr>().unwrap()]);
}
