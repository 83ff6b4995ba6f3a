//! DNS messages on the wire (RFC 1035), through `hickory-proto`'s encoder
//! and decoder: an A or AAAA question for one name, and the addresses and
//! TTL an answer gives for it, CNAME chains followed within the answer.
//!
//! Pure: no socket here (`super::client` sends and receives). An answer that
//! is not for the question asked (another id, name or type) is told apart
//! from one that is, so that the client can wait on for the right one.

use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use std::net::IpAddr;

/// Largest UDP answer the gateway takes (EDNS(0); RFC 9715's safe size).
pub const UDP_PAYLOAD: u16 = 1232;

/// Links of a CNAME chain followed within one answer.
const MAX_CHAIN: usize = 8;

/// Which addresses a question asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn record_type(self) -> RecordType {
        match self {
            Family::V4 => RecordType::A,
            Family::V6 => RecordType::AAAA,
        }
    }
}

/// Why an answer gave no addresses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("`{0}` is not a valid DNS name")]
    BadName(String),
    #[error("cannot encode the question: {0}")]
    Encode(String),
    #[error("malformed DNS answer: {0}")]
    Malformed(String),
    #[error("the DNS server answered {0}")]
    Refused(String),
}

/// What one answer says about the question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Not an answer to this question (another id, name or type): ignore it.
    NotOurs,
    /// Cut short (the TC bit): ask again over TCP.
    Truncated,
    /// The addresses found (none for a name that does not exist or has no
    /// address of this family) and the lowest TTL of the records used.
    Found {
        addrs: Vec<IpAddr>,
        ttl: Option<u32>,
    },
}

/// The name as an absolute DNS name (`svc.example.test.`).
pub fn absolute_name(host: &str) -> Result<Name, WireError> {
    let mut name = Name::from_ascii(host).map_err(|_| WireError::BadName(host.to_string()))?;
    name.set_fqdn(true);
    Ok(name)
}

/// A recursive query with id `id` for the `family` addresses of `name`.
pub fn encode_query(id: u16, name: &Name, family: Family) -> Result<Vec<u8>, WireError> {
    let mut message = Message::new(id, MessageType::Query, hickory_proto::op::OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name.clone(), family.record_type()));
    let mut edns = Edns::new();
    edns.set_max_payload(UDP_PAYLOAD);
    message.set_edns(edns);
    message
        .to_vec()
        .map_err(|e| WireError::Encode(e.to_string()))
}

/// Reads `bytes` as the answer to query `id` for the `family` addresses of `name`.
pub fn read_answer(
    bytes: &[u8],
    id: u16,
    name: &Name,
    family: Family,
) -> Result<Answer, WireError> {
    let message = Message::from_vec(bytes).map_err(|e| WireError::Malformed(e.to_string()))?;
    let question = message.queries.first();
    let ours = message.metadata.id == id
        && message.metadata.message_type == MessageType::Response
        && question.is_some_and(|q| {
            q.query_type() == family.record_type() && q.name().eq_ignore_root(name)
        });
    if !ours {
        return Ok(Answer::NotOurs);
    }
    if message.metadata.truncation {
        return Ok(Answer::Truncated);
    }
    match message.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => {
            return Ok(Answer::Found {
                addrs: Vec::new(),
                ttl: None,
            })
        }
        other => return Err(WireError::Refused(other.to_string())),
    }
    let mut target = name.clone();
    let mut ttl: Option<u32> = None;
    let lower = |ttl: &mut Option<u32>, record_ttl: u32| {
        *ttl = Some(ttl.map_or(record_ttl, |t| t.min(record_ttl)));
    };
    for _ in 0..MAX_CHAIN {
        let cname = message.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(alias) if r.name.eq_ignore_root(&target) => Some((alias.0.clone(), r.ttl)),
            _ => None,
        });
        let Some((alias, record_ttl)) = cname else {
            break;
        };
        lower(&mut ttl, record_ttl);
        target = alias;
    }
    let mut addrs = Vec::new();
    let mut address_ttl = None;
    for record in message
        .answers
        .iter()
        .filter(|r| r.name.eq_ignore_root(&target))
    {
        let addr = match (&record.data, family) {
            (RData::A(a), Family::V4) => IpAddr::V4(a.0),
            (RData::AAAA(a), Family::V6) => IpAddr::V6(a.0),
            _ => continue,
        };
        lower(&mut address_ttl, record.ttl);
        addrs.push(addr);
    }
    if addrs.is_empty() {
        return Ok(Answer::Found { addrs, ttl: None });
    }
    if let Some(t) = address_ttl {
        lower(&mut ttl, t);
    }
    Ok(Answer::Found { addrs, ttl })
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
