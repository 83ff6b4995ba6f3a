//! The process-level side of a takeover: the control-socket thread that
//! answers successors, and SIGUSR2's upgrade, which starts this binary again
//! as a successor. The conversation itself is [`super::takeover`].

use super::handover::ControlListener;
use super::state::StateHandover;
use super::takeover::{hand_over, HandedListener, SuccessorSlot};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// Serves takeover requests on `control` until one succeeds: then leaves the
/// successor in `slot` and calls `on_handed_over` (which starts the drain).
pub fn spawn_control_socket(
    control: ControlListener,
    listeners: Vec<HandedListener>,
    state: Arc<dyn StateHandover>,
    slot: SuccessorSlot,
    on_handed_over: impl FnOnce() + Send + 'static,
) -> io::Result<()> {
    info!(path = %control.path().display(), "control socket ready for takeover");
    std::thread::Builder::new()
        .name("portcullis-control-socket".into())
        .spawn(move || loop {
            let channel = match control.accept() {
                Ok(channel) => channel,
                Err(e) => {
                    warn!(error = %e, "control socket accept failed");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            match hand_over(channel, &listeners, state.as_ref()) {
                Ok(successor) => {
                    info!(target: "portcullis::audit", successor_pid = successor.pid, "takeover: the new process serves; this one stops accepting and drains");
                    match slot.lock() {
                        Ok(mut guard) => *guard = Some(successor),
                        Err(poisoned) => *poisoned.into_inner() = Some(successor),
                    }
                    on_handed_over();
                    return;
                }
                Err(e) => warn!(error = %e, "takeover failed; still serving"),
            }
        })?;
    Ok(())
}

/// Starts this binary again with the same arguments plus `--takeover`
/// (SIGUSR2: the upgrade). The path is the one this process was started by
/// (`argv[0]`), so a package upgrade that replaced the file starts the new
/// binary. Returns the successor's pid; it reaps itself on a thread.
pub fn spawn_successor() -> io::Result<u32> {
    let mut args = std::env::args_os();
    let program = args
        .next()
        .ok_or_else(|| io::Error::other("no argv[0] to start again"))?;
    let mut rest: Vec<_> = args.collect();
    if !rest.iter().any(|a| a == "--takeover") {
        rest.push("--takeover".into());
    }
    let mut child = std::process::Command::new(program)
        .args(rest)
        .stdin(std::process::Stdio::null())
        .spawn()?;
    let pid = child.id();
    std::thread::Builder::new()
        .name("portcullis-successor".into())
        .spawn(move || match child.wait() {
            Ok(status) if !status.success() => {
                warn!(pid, %status, "the successor exited; this process goes on serving")
            }
            _ => {}
        })?;
    Ok(pid)
}
