//! Background threads (config reloads, state flushes, log writers) yield to
//! the workers that share their cores: their scheduling priority is lowered.

/// Nice value of threads that compile configs or write state: a reload
/// (10,000 subscribers take tens of milliseconds to parse and compile) must
/// yield to the workers sharing its core, not add to their latency.
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`BACKGROUND_NICE`]
/// (on Linux the nice value is per thread).
pub fn lower_thread_priority() {
    if let Err(e) = rustix::process::setpriority_process(None, BACKGROUND_NICE) {
        tracing::debug!(error = %e, "cannot lower a background thread's priority");
    }
}
