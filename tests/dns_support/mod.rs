//! A DNS server for the tests: UDP on 127.0.0.1 (a free port), answering A
//! questions from a table the test changes, with the TTL the test chooses;
//! AAAA questions get an empty answer and unknown names NXDOMAIN. Every
//! question is recorded with the time it arrived. Answers are encoded with
//! hickory-proto. Stopped when dropped.

#![allow(dead_code)]

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// One question the server received.
#[derive(Debug, Clone)]
pub struct Question {
    pub name: String,
    pub kind: RecordType,
    pub at: Instant,
}

/// The running DNS server.
pub struct DnsServer {
    pub addr: SocketAddr,
    table: Arc<Mutex<HashMap<String, Vec<Ipv4Addr>>>>,
    ttl: Arc<AtomicU32>,
    questions: Arc<Mutex<Vec<Question>>>,
    stop: Arc<AtomicBool>,
}

impl DnsServer {
    /// Starts a server whose answers carry `ttl` seconds.
    pub fn start(ttl: u32) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind DNS server");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let server = DnsServer {
            addr: socket.local_addr().unwrap(),
            table: Arc::default(),
            ttl: Arc::new(AtomicU32::new(ttl)),
            questions: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (table, ttl, questions, stop) = (
            server.table.clone(),
            server.ttl.clone(),
            server.questions.clone(),
            server.stop.clone(),
        );
        thread::spawn(move || {
            let mut buffer = [0u8; 1500];
            while !stop.load(Ordering::SeqCst) {
                let Ok((n, peer)) = socket.recv_from(&mut buffer) else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buffer[..n]) else {
                    continue;
                };
                let reply = answer(&query, &table, ttl.load(Ordering::SeqCst), &questions);
                let _ = socket.send_to(&reply, peer);
            }
        });
        server
    }

    /// From now on `name` resolves to `addrs` (none: NXDOMAIN).
    pub fn set(&self, name: &str, addrs: &[&str]) {
        let addrs = addrs.iter().map(|a| a.parse().unwrap()).collect();
        self.table
            .lock()
            .unwrap()
            .insert(name.to_ascii_lowercase(), addrs);
    }

    /// When the A questions for `name` arrived, in order.
    pub fn a_questions(&self, name: &str) -> Vec<Instant> {
        self.questions
            .lock()
            .unwrap()
            .iter()
            .filter(|q| q.kind == RecordType::A && q.name.eq_ignore_ascii_case(name))
            .map(|q| q.at)
            .collect()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The wire answer to `query`.
fn answer(
    query: &Message,
    table: &Mutex<HashMap<String, Vec<Ipv4Addr>>>,
    ttl: u32,
    questions: &Mutex<Vec<Question>>,
) -> Vec<u8> {
    let mut reply = Message::new(
        query.metadata.id,
        MessageType::Response,
        query.metadata.op_code,
    );
    reply.metadata.recursion_available = true;
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    let Some(question) = query.queries.first() else {
        reply.metadata.response_code = ResponseCode::FormErr;
        return reply.to_vec().unwrap();
    };
    reply.add_query(question.clone());
    let name = question.name().to_ascii();
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    questions.lock().unwrap().push(Question {
        name: name.clone(),
        kind: question.query_type(),
        at: Instant::now(),
    });
    match table.lock().unwrap().get(&name) {
        None => reply.metadata.response_code = ResponseCode::NXDomain,
        Some(addrs) if question.query_type() == RecordType::A => {
            for addr in addrs {
                reply.add_answer(Record::from_rdata(
                    question.name().clone(),
                    ttl,
                    RData::A(A(*addr)),
                ));
            }
        }
        Some(_) => {}
    }
    reply.to_vec().unwrap()
}
