//! The control thread: watches the config file's directory and reloads when
//! the file changes.
//!
//! Editors save by writing a new file and renaming it over the old one, so the
//! directory is watched, not the file (a watch on the file would follow the old
//! inode). Events are debounced: a reload runs once the directory has been quiet
//! for [`DEBOUNCE`], so a burst of writes becomes one reload of the final text.

use crate::reload::{Reloader, Trigger};
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info};

/// Quiet time after the last event before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// Starts watching the config file; the thread lives as long as the process.
pub fn spawn_watcher(reloader: Arc<Reloader>) -> std::io::Result<()> {
    let file = reloader.path().to_path_buf();
    let dir = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (events, inbox) = channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = events.send(event);
    })
    .map_err(std::io::Error::other)?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(std::io::Error::other)?;
    info!(file = %file.display(), "watching the config file for changes");
    std::thread::Builder::new()
        .name("portcullis-control".into())
        .spawn(move || {
            let _watcher = watcher;
            let mut pending = false;
            loop {
                match inbox.recv_timeout(DEBOUNCE) {
                    Ok(Ok(event)) => pending |= concerns(&event, &file),
                    Ok(Err(e)) => error!(error = %e, "config watch error"),
                    Err(RecvTimeoutError::Timeout) => {
                        if pending {
                            pending = false;
                            reloader.reload(Trigger::FileChange);
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        })?;
    Ok(())
}

/// True when the event touches the config file (by name: renames included).
fn concerns(event: &notify::Event, file: &Path) -> bool {
    let name = file.file_name();
    !event.kind.is_access() && event.paths.iter().any(|p| p.file_name() == name)
}
