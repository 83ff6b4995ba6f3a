//! State that must survive a takeover: the hook the quota store fills in.
//!
//! During a takeover both processes serve for a moment (the new one already
//! accepts while the old one drains), so a counter cannot simply be written
//! by one and read by the other. The exchange is in two steps, both over the
//! control socket, so that nothing counted is lost or counted twice:
//!
//! 1. **at hand-over** the old process exports everything counted so far
//!    ([`StateHandover::export_at_handover`], also the moment to flush to
//!    `state_dir`); the new process imports it before its workers serve
//!    ([`StateHandover::import_at_handover`]).
//! 2. **after drain** the old process exports only what it counted after step 1
//!    ([`StateHandover::export_after_drain`]); the new process adds it
//!    ([`StateHandover::import_after_drain`]).
//!
//! The new process's totals are then `at hand-over + its own + old's drain
//! delta`: exact. Blobs are opaque bytes (any size; sent in chunks); their
//! format is the implementation's and should carry a version. An import that
//! fails is logged and the takeover goes on (serving beats counting).
//!
//! A fresh start (no takeover) loads `state_dir` the usual way; these hooks
//! only cover the hand-over between two live processes. The implementation is
//! plugged in where `server::run` creates `state` (today `NoState`).
//!
//! Until usage plans land, [`NoState`] is used and the blobs are empty.

/// The contract a stateful component (the quota store) implements.
///
/// Called on the control-socket thread, never on a worker. The exports must
/// not change what the workers count: a takeover can fail after
/// `export_at_handover` (the new process dies before it serves), and the old
/// process then goes on serving and may be taken over again later, so it must
/// remember what it exported last and count the drain delta from there.
pub trait StateHandover: Send + Sync {
    /// Old process, before its sockets are handed over: everything counted so
    /// far (also the moment to flush to `state_dir`).
    fn export_at_handover(&self) -> Vec<u8>;
    /// New process, before its workers serve: start from these counts.
    fn import_at_handover(&self, state: &[u8]) -> Result<(), String>;
    /// Old process, after its workers drained: what it counted since
    /// [`StateHandover::export_at_handover`].
    fn export_after_drain(&self) -> Vec<u8>;
    /// New process: add what the old one counted while draining.
    fn import_after_drain(&self, delta: &[u8]) -> Result<(), String>;
}

/// No state to carry (the gateway without usage plans).
#[derive(Debug, Default)]
pub struct NoState;

impl StateHandover for NoState {
    fn export_at_handover(&self) -> Vec<u8> {
        Vec::new()
    }
    fn import_at_handover(&self, _state: &[u8]) -> Result<(), String> {
        Ok(())
    }
    fn export_after_drain(&self) -> Vec<u8> {
        Vec::new()
    }
    fn import_after_drain(&self, _delta: &[u8]) -> Result<(), String> {
        Ok(())
    }
}
