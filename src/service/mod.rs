//! Running as a Linux system service: what the process does for systemd and
//! for the operator around start, reload, upgrade and stop. Nothing here is on
//! the request path.
//!
//! | concern | file |
//! |---|---|
//! | telling systemd we are ready, reloading, stopping (`sd_notify`) | `notify.rs` |
//! | refusing to start with one clear line (port, fd limit, io_uring) | `preflight.rs` |
//! | who holds a listening address (a live process, or one that exited) | `port_owner.rs` |
//! | passing listening sockets between processes (`SCM_RIGHTS`) | `handover.rs` |
//! | the takeover conversation on the control socket | `takeover.rs` |
//! | the control-socket thread, SIGUSR2's upgrade | `upgrade.rs` |
//! | state that must survive a takeover (quota counters) | `state.rs` |
//! | background threads yield to the workers | `threads.rs` |

pub mod handover;
pub mod notify;
pub mod port_owner;
pub mod preflight;
pub mod state;
pub mod takeover;
pub mod threads;
pub mod upgrade;
