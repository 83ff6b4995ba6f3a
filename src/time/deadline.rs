//! Per-worker coarse timeouts: one timer per connection task, checked by one
//! sweeper per worker.
//!
//! Every read and write on the request path has a deadline, so timeouts must
//! cost next to nothing. Instead of a timer-wheel entry per operation (a large,
//! cache-padded future armed and disarmed four times per request), each
//! connection task owns one [`TaskTimer`]: arming it is two `Cell` writes.
//! The worker's [`Deadlines::sweep`] task wakes every [`TICK`], advances the
//! worker's coarse clock and wakes the tasks whose deadline has passed; the
//! woken operation sees the deadline expired and returns `Elapsed`, which drops
//! (and so cancels) the I/O. Deadlines are therefore accurate to one tick,
//! plenty for timeouts measured in seconds. A task awaits one operation at a
//! time, so one timer per task is enough (the upstream exchange runs inside its
//! client's task and uses the same timer).
//!
//! Draining: [`Deadlines::close_idle_after`] sets a cut-off after which every
//! wait marked idle ([`TaskTimer::set_idle`], a keep-alive connection between
//! requests) expires as if its deadline had passed.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// Resolution of the worker's coarse clock and of every deadline.
pub const TICK: Duration = Duration::from_millis(100);

/// A point in time on a worker's coarse clock, in ticks since the worker started.
pub type Tick = u64;

/// A duration in whole ticks, rounded up, at least one.
pub fn ticks(duration: Duration) -> Tick {
    let ticks = duration.as_nanos().div_ceil(TICK.as_nanos()).max(1);
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// An operation outlived its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

#[derive(Default)]
struct TimerSlot {
    /// Armed deadline, if an operation is waiting under one.
    deadline: Cell<Option<Tick>>,
    /// The operation is an idle wait, which a drain cuts short.
    idle: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// The worker's coarse clock and the timers of its connection tasks.
pub struct Deadlines {
    started: Instant,
    now: Cell<Tick>,
    timers: RefCell<Vec<Rc<TimerSlot>>>,
    /// From this tick on, idle waits expire (set when draining).
    idle_cutoff: Cell<Option<Tick>>,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            started: Instant::now(),
            now: Cell::new(0),
            timers: RefCell::new(Vec::new()),
            idle_cutoff: Cell::new(None),
        }
    }
}

impl Deadlines {
    /// The current tick (advanced by the sweeper; no system call).
    pub fn now(&self) -> Tick {
        self.now.get()
    }

    /// The tick `after` from now, rounded up, at least one tick ahead.
    pub fn after(&self, after: Duration) -> Tick {
        self.now().saturating_add(ticks(after))
    }

    /// Idle waits expire once `grace` has passed (rounded up to a tick).
    pub fn close_idle_after(&self, grace: Duration) {
        self.idle_cutoff.set(Some(self.after(grace)));
    }

    fn idle_expired(&self) -> bool {
        self.idle_cutoff
            .get()
            .is_some_and(|cutoff| self.now() >= cutoff)
    }

    /// A timer for a new task; it is swept until the task drops it.
    pub fn timer(self: &Rc<Self>) -> TaskTimer {
        let slot = Rc::new(TimerSlot::default());
        self.timers.borrow_mut().push(Rc::clone(&slot));
        TaskTimer {
            slot,
            deadlines: Rc::clone(self),
        }
    }

    /// Advances the clock to `at` and wakes every task whose deadline passed;
    /// forgets timers whose task is gone.
    fn advance(&self, at: Instant) {
        let ticks = at.saturating_duration_since(self.started).as_nanos() / TICK.as_nanos();
        let now = u64::try_from(ticks).unwrap_or(u64::MAX);
        self.now.set(now);
        let mut expired: Vec<Waker> = Vec::new();
        let idle_expired = self.idle_expired();
        self.timers.borrow_mut().retain(|slot| {
            if Rc::strong_count(slot) == 1 {
                return false;
            }
            let idle_cut = idle_expired && slot.idle.get() && slot.deadline.get().is_some();
            if idle_cut || slot.deadline.get().is_some_and(|d| d <= now) {
                if let Some(waker) = slot.waker.borrow_mut().take() {
                    expired.push(waker);
                }
            }
            true
        });
        for waker in expired {
            waker.wake();
        }
    }

    /// The sweeper: runs for the worker's lifetime.
    pub async fn sweep(self: Rc<Self>) {
        loop {
            monoio::time::sleep(TICK).await;
            self.advance(Instant::now());
        }
    }
}

/// One task's timer: bounds the operation it is awaiting.
pub struct TaskTimer {
    slot: Rc<TimerSlot>,
    deadlines: Rc<Deadlines>,
}

impl TaskTimer {
    /// The worker's clock.
    pub fn deadlines(&self) -> &Deadlines {
        &self.deadlines
    }

    /// Marks the operations that follow as idle waits (or not): a drain
    /// ends them early.
    pub fn set_idle(&self, idle: bool) {
        self.slot.idle.set(idle);
    }

    /// Runs `operation` until it completes or `deadline` passes; an expired
    /// operation is dropped, which cancels its I/O.
    pub async fn within<F: Future>(
        &self,
        deadline: Tick,
        operation: F,
    ) -> Result<F::Output, Elapsed> {
        let mut operation = pin!(operation);
        self.slot.deadline.set(Some(deadline));
        let result = poll_fn(|cx| {
            if let Poll::Ready(output) = operation.as_mut().poll(cx) {
                return Poll::Ready(Ok(output));
            }
            if self.deadlines.now() >= deadline
                || (self.slot.idle.get() && self.deadlines.idle_expired())
            {
                return Poll::Ready(Err(Elapsed));
            }
            let mut waker = self.slot.waker.borrow_mut();
            match waker.as_ref() {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await;
        self.slot.deadline.set(None);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A deadline is at least one tick ahead and rounds up.
    #[test]
    fn after_rounds_up() {
        let deadlines = Deadlines::default();
        assert_eq!(
            [
                Duration::ZERO,
                Duration::from_millis(1),
                Duration::from_millis(250)
            ]
            .map(|d| deadlines.after(d)),
            [1, 1, 3]
        );
    }

    // Past the drain cut-off an idle wait expires; a wait not marked idle does not.
    #[test]
    fn drain_cutoff_expires_idle_waits_only() {
        let deadlines = Rc::new(Deadlines::default());
        let idle = deadlines.timer();
        idle.set_idle(true);
        let busy = deadlines.timer();
        deadlines.close_idle_after(Duration::ZERO);
        deadlines.advance(Instant::now() + 2 * TICK);
        let far = deadlines.after(Duration::from_secs(60));
        let pending = std::future::pending::<()>;
        let mut runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        let (idle_result, busy_result) = runtime.block_on(async {
            let idle_result = idle.within(far, pending()).await;
            let busy_result = monoio::select! {
                r = busy.within(far, pending()) => Some(r),
                _ = monoio::time::sleep(Duration::from_millis(20)) => None,
            };
            (idle_result, busy_result)
        });
        assert_eq!((idle_result, busy_result), (Err(Elapsed), None));
    }

    // Sweeping forgets the timers of finished tasks.
    #[test]
    fn sweep_forgets_dropped_timers() {
        let deadlines = Rc::new(Deadlines::default());
        let kept = deadlines.timer();
        drop(deadlines.timer());
        deadlines.advance(Instant::now());
        assert_eq!(
            (deadlines.timers.borrow().len(), kept.slot.deadline.get()),
            (1, None)
        );
    }
}
