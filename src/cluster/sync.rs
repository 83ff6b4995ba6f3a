//! The store thread: the only code that talks to the store. It takes the
//! keys workers asked for ([`ClusterLink::take_asked`]), reserves rate
//! tokens and quota counts for them in batches sized to each key's observed
//! rate, hands idle quota reservations back, sends the heartbeat, and
//! publishes every quota contribution again when the store lost it (it came
//! back empty) or could not be reached when it changed.
//!
//! Every store call has a response timeout; a failed call marks the store
//! down (one audit line), and the thread reconnects every
//! [`RECONNECT_EVERY`] meanwhile. Workers never wait for this thread longer
//! than the budget (they wait on [`ClusterLink::wait_for`]).

use super::membership::{Membership, HEARTBEAT_EVERY_MS, HEARTBEAT_TTL_MS};
use super::spec::ClusterSpec;
use super::stats::stats;
use super::store::{connect, Connection, QuotaWrite, Scripts};
use crate::policy::usage::{
    next_reset, period_number, Asked, ClusterLink, QuotaCounter, RemoteRate,
};
use crate::time::clock::{mono_ns, unix_secs};
use redis::RedisResult;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// How long the thread sleeps when nobody asks.
pub const TICK: Duration = Duration::from_millis(20);
/// A quota with no request for this long hands its unused reservation back.
pub const IDLE_HAND_BACK: Duration = Duration::from_millis(1_000);
/// Reconnection attempts while the store is down.
pub const RECONNECT_EVERY: Duration = Duration::from_millis(250);
/// Every contribution is written again this often even when nothing seems lost.
const REPUBLISH_ALL_EVERY_NS: u64 = 10_000_000_000;
/// Rate batches cover this much of a key's observed rate (seconds).
const RATE_HORIZON: f64 = 0.05;
/// Quota batches cover this much of a key's observed rate (seconds).
const QUOTA_HORIZON: f64 = 0.2;
/// Shortest time over which a key's rate is measured.
const RATE_SAMPLE_NS: u64 = 100_000_000;

/// A key's observed rate.
#[derive(Default)]
struct Observed {
    last_count: u64,
    last_ns: u64,
    per_second: f64,
}

impl Observed {
    fn sample(&mut self, count: u64, now: u64) -> f64 {
        if self.last_ns == 0 {
            (self.last_count, self.last_ns) = (count, now);
        } else if now - self.last_ns >= RATE_SAMPLE_NS {
            let rate =
                count.saturating_sub(self.last_count) as f64 * 1e9 / (now - self.last_ns) as f64;
            self.per_second = if self.per_second == 0.0 {
                rate
            } else {
                0.5 * self.per_second + 0.5 * rate
            };
            (self.last_count, self.last_ns) = (count, now);
        }
        self.per_second
    }
}

/// What the thread knows of one quota counter.
#[derive(Default)]
struct QuotaTrack {
    observed: Observed,
    /// (period, contribution) last written.
    published: Option<(i64, u64)>,
}

struct StoreThread {
    spec: ClusterSpec,
    link: Arc<ClusterLink>,
    scripts: Scripts,
    conn: Option<Connection>,
    /// When the store went down (process clock ns); None while up.
    down_since: Option<u64>,
    next_connect: u64,
    next_heartbeat: u64,
    next_republish_all: u64,
    republish_all: bool,
    rates: HashMap<String, Observed>,
    quotas: HashMap<String, QuotaTrack>,
    /// Quotas with a reservation that may need handing back.
    holding: HashMap<String, Arc<QuotaCounter>>,
    membership: Membership,
    live_nodes: u32,
    /// The counts this process started from are final (see
    /// [`crate::policy::usage::UsageRegistry::counts_final`]); when not, the
    /// first write of each quota keeps the store's field for this node as a
    /// floor and raises the local count to it.
    counts_final: bool,
}

/// Starts the store thread for `spec`; workers reach it through `link`.
/// `counts_final`: the quota counts this process started from are final.
pub fn spawn(spec: ClusterSpec, link: Arc<ClusterLink>, counts_final: bool) -> std::io::Result<()> {
    stats().active.store(true, Ordering::Relaxed);
    let mut thread = StoreThread {
        spec,
        link,
        scripts: Scripts::default(),
        conn: None,
        down_since: Some(mono_ns()),
        next_connect: 0,
        next_heartbeat: 0,
        next_republish_all: 0,
        republish_all: true,
        rates: HashMap::new(),
        quotas: HashMap::new(),
        holding: HashMap::new(),
        membership: Membership::default(),
        live_nodes: 1,
        counts_final,
    };
    std::thread::Builder::new()
        .name("cluster-store".into())
        .spawn(move || thread.run())
        .map(|_| ())
}

impl StoreThread {
    fn run(&mut self) {
        loop {
            let asked = self.link.take_asked(TICK);
            let now = mono_ns();
            if self.conn.is_none() && now >= self.next_connect {
                self.reconnect(now);
            }
            if let Some(mut conn) = self.conn.take() {
                match self.serve(&mut conn, asked) {
                    Ok(()) => self.conn = Some(conn),
                    Err(e) => self.went_down(&e),
                }
            } else {
                for key in asked {
                    match key {
                        Asked::Rate(rate) => rate.unqueue(),
                        Asked::Quota(counter) => {
                            if let Some(remote) = counter.remote() {
                                remote.unqueue();
                            }
                        }
                    }
                }
            }
            if let Some(since) = self.down_since {
                let now = mono_ns();
                stats()
                    .fallback_ns
                    .fetch_add(now - since, Ordering::Relaxed);
                self.down_since = Some(now);
            }
            self.link.finish_round();
        }
    }

    fn reconnect(&mut self, now: u64) {
        match connect(&self.spec) {
            Ok(conn) => {
                self.conn = Some(conn);
                self.down_since = None;
                self.republish_all = true;
                self.next_heartbeat = 0;
                self.link.set_up(true);
                stats().store_up.store(true, Ordering::Relaxed);
                info!(target: "portcullis::audit", node = %self.spec.node_name, "cluster store up");
            }
            Err(e) => {
                self.next_connect = now + RECONNECT_EVERY.as_nanos() as u64;
                if self.link.is_up() {
                    self.went_down(&e);
                }
            }
        }
    }

    fn went_down(&mut self, error: &redis::RedisError) {
        stats().store_errors.fetch_add(1, Ordering::Relaxed);
        self.conn = None;
        self.next_connect = mono_ns() + RECONNECT_EVERY.as_nanos() as u64;
        if self.down_since.is_none() {
            self.down_since = Some(mono_ns());
            self.link.set_up(false);
            stats().store_up.store(false, Ordering::Relaxed);
            warn!(
                target: "portcullis::audit",
                node = %self.spec.node_name,
                error = %error,
                "cluster store down: limits follow on_store_unavailable until it answers"
            );
        }
    }

    /// One round: asked keys, then the heartbeat, hand-backs and republishing when due.
    fn serve(&mut self, conn: &mut Connection, asked: Vec<Asked>) -> RedisResult<()> {
        for key in asked {
            match key {
                Asked::Rate(rate) => {
                    rate.unqueue();
                    self.reserve_rate(conn, &rate)?;
                }
                Asked::Quota(counter) => {
                    if let Some(remote) = counter.remote() {
                        remote.unqueue();
                        self.holding
                            .insert(remote.name.clone(), Arc::clone(&counter));
                    }
                    self.sync_quota(conn, &counter, true, false)?;
                }
            }
        }
        let now = mono_ns();
        if now >= self.next_heartbeat {
            self.heartbeat(conn)?;
            self.next_heartbeat = now + HEARTBEAT_EVERY_MS * 1_000_000;
            // Idle hand-backs and changed contributions, once per heartbeat.
            let holding: Vec<Arc<QuotaCounter>> = self.holding.values().cloned().collect();
            for counter in holding {
                self.sync_quota(conn, &counter, false, false)?;
            }
            if now >= self.next_republish_all {
                self.republish_all = true;
                self.next_republish_all = now + REPUBLISH_ALL_EVERY_NS;
            }
        }
        if std::mem::take(&mut self.republish_all) {
            for counter in self.link.quotas() {
                self.sync_quota(conn, &counter, false, true)?;
            }
        }
        Ok(())
    }

    fn timed<T>(f: impl FnOnce() -> RedisResult<T>) -> RedisResult<T> {
        let start = std::time::Instant::now();
        let result = f();
        stats().round_trip(start.elapsed().as_micros() as u64);
        result
    }

    fn heartbeat(&mut self, conn: &mut Connection) -> RedisResult<()> {
        let key = format!("{}members", self.spec.key_prefix);
        let digest = self.link.digest();
        let (fresh, members) = Self::timed(|| {
            self.scripts
                .members(conn, &key, &self.spec.node_name, HEARTBEAT_TTL_MS, &digest)
        })?;
        if fresh {
            // This node's heartbeat was gone: a new node, or a store that lost its data.
            self.republish_all = true;
        }
        self.live_nodes = self
            .membership
            .update(&self.spec.node_name, &digest, members);
        self.link.set_live_nodes(self.live_nodes);
        Ok(())
    }

    fn reserve_rate(&mut self, conn: &mut Connection, rate: &Arc<RemoteRate>) -> RedisResult<()> {
        let now = mono_ns();
        let (interval_ns, burst) = rate.params();
        let observed = self.rates.entry(rate.name.clone()).or_default();
        let per_second = observed.sample(rate.taken.load(Ordering::Relaxed), now);
        let batch = ((per_second * RATE_HORIZON) as u64).clamp(1, u64::from(burst.max(1)));
        let batch = batch
            .max(u64::from(rate.batch.load(Ordering::Relaxed)).min(u64::from(burst)) / 2)
            .max(1);
        rate.batch.store(batch as u32, Ordering::Relaxed);
        let debt = rate.debt.load(Ordering::Relaxed);
        if debt == 0
            && (rate.held(now) > batch / 2 || now < rate.denied_until.load(Ordering::Relaxed))
        {
            return Ok(());
        }
        let key = format!("{}{}", self.spec.key_prefix, rate.name);
        let (granted, wait_us) = Self::timed(|| {
            self.scripts
                .rate(conn, &key, interval_ns, burst, batch, debt)
        })?;
        rate.debt.fetch_sub(debt, Ordering::Relaxed);
        if granted > 0 {
            rate.grant(granted, mono_ns());
            stats()
                .rate_tokens_reserved
                .fetch_add(granted, Ordering::Relaxed);
        } else {
            rate.denied_until
                .store(mono_ns() + wait_us.max(1) * 1_000, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Writes `counter`'s contribution for the current period, reserving a
    /// batch more when `more`; hands an idle reservation back. Skips the
    /// write when nothing changed since the last one, unless `force`.
    fn sync_quota(
        &mut self,
        conn: &mut Connection,
        counter: &Arc<QuotaCounter>,
        more: bool,
        force: bool,
    ) -> RedisResult<()> {
        let Some(remote) = counter.remote() else {
            return Ok(());
        };
        let Some(params) = remote.quota_params() else {
            return Ok(());
        };
        let (unix, now) = (unix_secs(), mono_ns());
        let period = period_number(params.period, unix);
        let used = counter.used(params.period, unix);
        let reserved = remote.reserved_in(period);
        let idle = now.saturating_sub(remote.last_count.load(Ordering::Relaxed))
            > IDLE_HAND_BACK.as_nanos() as u64;
        let mut contribution = used.max(reserved);
        if idle && reserved > used {
            remote.hand_back(used, period);
            contribution = counter.used(params.period, unix).max(used);
            stats()
                .quota_handed_back
                .fetch_add(reserved - contribution.min(reserved), Ordering::Relaxed);
        }
        if idle && !more {
            self.holding.remove(&remote.name);
        }
        let track = self.quotas.entry(remote.name.clone()).or_default();
        let per_second = track
            .observed
            .sample(remote.demand.load(Ordering::Relaxed), now);
        let (total, _) = remote.view();
        let left = params.limit.saturating_sub(total);
        let batch = ((per_second * QUOTA_HORIZON) as u64)
            .max(10)
            .min((left / (2 * u64::from(self.live_nodes))).max(1));
        remote.batch.store(batch, Ordering::Relaxed);
        // Reserve only when less than half a batch is left unused.
        let want = if more && !idle && reserved.saturating_sub(used) <= batch / 2 {
            batch
        } else {
            0
        };
        if want == 0 && contribution == 0 {
            return Ok(());
        }
        if want == 0 && !force && track.published == Some((period, contribution)) {
            return Ok(());
        }
        let ttl = (next_reset(params.period, unix) - unix).max(1) as u64 + 3_600;
        let key = format!("{}{}:{period}", self.spec.key_prefix, remote.name);
        let node = &self.spec.node_name;
        let scripts = &self.scripts;
        let write = QuotaWrite {
            contribution,
            want,
            limit: params.limit,
            ttl_secs: ttl,
            floor: !self.counts_final && track.published.is_none(),
        };
        let reply = Self::timed(|| scripts.quota(conn, &key, node, write))?;
        let (mine, total) = (reply.field, reply.total);
        if force && contribution > 0 {
            stats().republished.fetch_add(1, Ordering::Relaxed);
        }
        if reply.written > contribution {
            // An earlier run of this node, stopped without writing final
            // counts, held more than this process knows of: what the store
            // recorded for it counts as used (part of it may have been).
            counter.add(period, reply.written - used);
            info!(
                target: "portcullis::audit",
                node = %node,
                quota = %remote.name,
                local = used,
                store = reply.written,
                "quota count taken from the store: this node's earlier run did not stop cleanly"
            );
        }
        track.published = Some((period, mine));
        let granted = mine.saturating_sub(contribution);
        stats()
            .quota_counts_reserved
            .fetch_add(granted, Ordering::Relaxed);
        remote.answer(period, mine, total, want > 0 && granted == 0);
        Ok(())
    }
}
