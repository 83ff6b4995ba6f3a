//! The connection to the store and the three server-side scripts, each
//! touching ONE key (so they run unchanged on Redis Cluster, where a script's
//! keys must share a slot). Synchronous `redis` client calls, made only by
//! the store thread, each bounded by a response timeout.

use super::spec::{ClusterSpec, StoreAddress};
use redis::{ConnectionLike, RedisResult, Script};
use std::time::Duration;

/// Cluster-wide GCRA: grants up to `want` tokens of a rate key. KEYS[1]: the
/// key (its theoretical arrival time, µs of the store's clock); ARGV: ns
/// per token, burst, want, debt (tokens a fallback already admitted: charged
/// whatever the bucket holds). Returns {granted, µs until one token fits}.
const RATE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1]) / 1000
local capacity = interval * tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
tat = tat + tonumber(ARGV[4]) * interval
local debt = tat - now
local available = math.floor((capacity - debt) / interval)
if available <= 0 then
  if tonumber(ARGV[4]) > 0 then
    redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil(debt / 1000) + 1000)
  end
  return {0, math.ceil(debt + interval - capacity)}
end
local take = math.min(available, want)
local nxt = tat + take * interval
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.ceil((nxt - now) / 1000) + 1000)
return {take, 0}
"#;

/// A quota period: one hash, a field per node holding that node's
/// contribution. KEYS[1]: the hash; ARGV: node, contribution, want, limit,
/// TTL seconds, floor (1: never lower the node's field, the contribution is
/// at least what the store holds for it). Writes the node's contribution,
/// then reserves up to `want` more while the sum stays ≤ limit. Returns
/// {node's field, sum of fields, the contribution written}.
const QUOTA: &str = r#"
local base = tonumber(ARGV[2])
if ARGV[6] == '1' then
  local held = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') or 0
  if held > base then base = held end
end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%.0f', base))
local vals = redis.call('HVALS', KEYS[1])
local total = 0
for i = 1, #vals do total = total + tonumber(vals[i]) end
local grant = math.min(tonumber(ARGV[3]), tonumber(ARGV[4]) - total)
if grant < 0 then grant = 0 end
local mine = base + grant
if grant > 0 then redis.call('HSET', KEYS[1], ARGV[1], string.format('%.0f', mine)) end
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {mine, total + grant, base}
"#;

/// Membership: one hash, a field per node: `expiry ms|digest`. KEYS[1]: the
/// hash; ARGV: node, TTL ms, digest. Refreshes this node, drops expired
/// ones, returns {1 if this node's field was new, name, digest, name, ...}.
const MEMBERS: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fresh = redis.call('HSET', KEYS[1], ARGV[1], string.format('%.0f', now + tonumber(ARGV[2])) .. '|' .. ARGV[3])
local all = redis.call('HGETALL', KEYS[1])
local out = {fresh}
for i = 1, #all, 2 do
  local v = all[i + 1]
  local sep = string.find(v, '|', 1, true)
  local exp = sep and tonumber(string.sub(v, 1, sep - 1)) or 0
  if exp < now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    table.insert(out, all[i])
    table.insert(out, string.sub(v, sep + 1))
  end
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 10)
return out
"#;

/// One write of a node's quota contribution.
#[derive(Debug, Clone, Copy)]
pub struct QuotaWrite {
    pub contribution: u64,
    /// Counts to reserve on top, while the sum stays ≤ `limit`.
    pub want: u64,
    pub limit: u64,
    pub ttl_secs: u64,
    /// Keep the field at least what the store holds for this node.
    pub floor: bool,
}

/// The store's answer to a [`QuotaWrite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaReply {
    /// This node's field now (its contribution plus what was granted).
    pub field: u64,
    /// Sum of every node's field.
    pub total: u64,
    /// The contribution written (more than asked when `floor` raised it).
    pub written: u64,
}

/// How long the store thread waits for one answer before calling the store down.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(400);
/// How long it waits for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// One open connection: a single server or a Redis Cluster.
pub enum Connection {
    Single(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

/// The scripts, loaded once (`EVALSHA`, `EVAL` when the store forgot them).
pub struct Scripts {
    rate: Script,
    quota: Script,
    members: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts {
            rate: Script::new(RATE),
            quota: Script::new(QUOTA),
            members: Script::new(MEMBERS),
        }
    }
}

fn tls_certs(spec: &ClusterSpec) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: None,
        root_cert: spec.ca_pem.clone(),
    }
}

/// Opens a connection as `spec` says.
pub fn connect(spec: &ClusterSpec) -> RedisResult<Connection> {
    match &spec.address {
        StoreAddress::Single(url) => {
            let mut info: redis::ConnectionInfo =
                redis::IntoConnectionInfo::into_connection_info(url.as_str())?;
            let mut settings = info.redis_settings().clone();
            if let Some(user) = &spec.username {
                settings = settings.set_username(user);
            }
            if let Some(password) = &spec.password {
                settings = settings.set_password(password.expose());
            }
            info = info.set_redis_settings(settings);
            let client = if spec.tls {
                redis::Client::build_with_tls(info, tls_certs(spec))?
            } else {
                redis::Client::open(info)?
            };
            let conn = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
            conn.set_read_timeout(Some(RESPONSE_TIMEOUT))?;
            conn.set_write_timeout(Some(RESPONSE_TIMEOUT))?;
            Ok(Connection::Single(conn))
        }
        StoreAddress::Cluster(seeds) => {
            let mut builder = redis::cluster::ClusterClientBuilder::new(seeds.clone())
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                .retries(1);
            if let Some(user) = &spec.username {
                builder = builder.username(user);
            }
            if let Some(password) = &spec.password {
                builder = builder.password(password.expose());
            }
            if spec.tls {
                builder = builder.certs(tls_certs(spec));
            }
            Ok(Connection::Cluster(Box::new(
                builder.build()?.get_connection()?,
            )))
        }
    }
}

impl Connection {
    fn link(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Connection::Single(c) => c,
            Connection::Cluster(c) => c.as_mut(),
        }
    }
}

impl Scripts {
    /// Reserves up to `want` tokens of a rate key: (granted, µs until one fits).
    pub fn rate(
        &self,
        conn: &mut Connection,
        key: &str,
        interval_ns: u64,
        burst: u32,
        want: u64,
        debt: u64,
    ) -> RedisResult<(u64, u64)> {
        self.rate
            .key(key)
            .arg(interval_ns)
            .arg(burst)
            .arg(want)
            .arg(debt)
            .invoke(conn.link())
    }

    /// Publishes this node's contribution to a quota period and reserves up
    /// to `want` more.
    pub fn quota(
        &self,
        conn: &mut Connection,
        key: &str,
        node: &str,
        write: QuotaWrite,
    ) -> RedisResult<QuotaReply> {
        let (field, total, written) = self
            .quota
            .key(key)
            .arg(node)
            .arg(write.contribution)
            .arg(write.want)
            .arg(write.limit)
            .arg(write.ttl_secs)
            .arg(u8::from(write.floor))
            .invoke(conn.link())?;
        Ok(QuotaReply {
            field,
            total,
            written,
        })
    }

    /// Heartbeat: (this node's entry was new, live nodes with their digests).
    pub fn members(
        &self,
        conn: &mut Connection,
        key: &str,
        node: &str,
        ttl_ms: u64,
        digest: &str,
    ) -> RedisResult<(bool, Vec<(String, String)>)> {
        let reply: Vec<redis::Value> = self
            .members
            .key(key)
            .arg(node)
            .arg(ttl_ms)
            .arg(digest)
            .invoke(conn.link())?;
        let mut values = reply.into_iter();
        let fresh: i64 = match values.next() {
            Some(v) => redis::from_redis_value(v).map_err(redis::RedisError::from)?,
            None => 0,
        };
        let rest: Vec<String> = values
            .map(|v| redis::from_redis_value(v).map_err(redis::RedisError::from))
            .collect::<RedisResult<_>>()?;
        let members = rest
            .chunks(2)
            .filter_map(|pair| match pair {
                [name, digest] => Some((name.clone(), digest.clone())),
                _ => None,
            })
            .collect();
        Ok((fresh == 1, members))
    }
}
