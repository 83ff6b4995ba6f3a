//! The control thread: watches the config file and every file it includes,
//! and reloads when one changes.
//!
//! Editors save by writing a new file and renaming it over the old one, so the
//! directories are watched, not the files (a watch on a file would follow the
//! old inode). A config file that is a symbolic link has its target's
//! directory watched as well. Events are debounced: a reload runs once the directories have
//! been quiet for [`DEBOUNCE`], so a burst of writes becomes one reload of the
//! final text. After each reload the set of watched files is read again, so a
//! newly included file is watched from then on.

use crate::runtime::reload::Reloader;
use crate::telemetry::reloads::Trigger;
use notify::{RecursiveMode, Watcher};
use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info};

/// Quiet time after the last event before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

fn directory_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Starts watching the config files; the thread lives as long as the process.
pub fn spawn_watcher(reloader: Arc<Reloader>) -> std::io::Result<()> {
    let (events, inbox) = channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = events.send(event);
    })
    .map_err(std::io::Error::other)?;
    let mut watched: HashSet<PathBuf> = HashSet::new();
    let mut names: HashSet<OsString> = HashSet::new();
    watch_files(&mut watcher, &reloader.files(), &mut watched, &mut names)?;
    info!(file = %reloader.path().display(), files = names.len(), "watching the config files for changes");
    std::thread::Builder::new()
        .name("portcullis-control".into())
        .spawn(move || {
            crate::service::threads::lower_thread_priority();
            let mut pending = false;
            loop {
                match inbox.recv_timeout(DEBOUNCE) {
                    Ok(Ok(event)) => pending |= concerns(&event, &names),
                    Ok(Err(e)) => error!(error = %e, "config watch error"),
                    Err(RecvTimeoutError::Timeout) => {
                        if pending {
                            pending = false;
                            reloader.reload(Trigger::FileChange);
                            if let Err(e) = watch_files(
                                &mut watcher,
                                &reloader.files(),
                                &mut watched,
                                &mut names,
                            ) {
                                error!(error = %e, "cannot watch an included file's directory");
                            }
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        })?;
    Ok(())
}

/// Adds watches for the directories of `files` not watched yet.
fn watch_files(
    watcher: &mut notify::RecommendedWatcher,
    files: &[PathBuf],
    watched: &mut HashSet<PathBuf>,
    names: &mut HashSet<OsString>,
) -> std::io::Result<()> {
    for file in files {
        for path in std::iter::once(file.clone()).chain(symlink_target(file)) {
            if let Some(name) = path.file_name() {
                names.insert(name.to_os_string());
            }
            let dir = directory_of(&path);
            if watched.insert(dir.clone()) {
                watcher
                    .watch(&dir, RecursiveMode::NonRecursive)
                    .map_err(std::io::Error::other)?;
            }
        }
    }
    Ok(())
}

/// Where a config file that is a symbolic link leads: its directory is watched
/// too, so an edit of the target (`/etc/portcullis/gateway.toml` linked to a
/// file kept elsewhere) or a swap of the link's directory (a Kubernetes
/// ConfigMap's `..data`) is noticed.
fn symlink_target(file: &Path) -> Option<PathBuf> {
    let is_link = std::fs::symlink_metadata(file)
        .ok()?
        .file_type()
        .is_symlink();
    is_link.then(|| std::fs::canonicalize(file).ok()).flatten()
}

/// True when the event touches one of the config files (by name: renames included).
fn concerns(event: &notify::Event, names: &HashSet<OsString>) -> bool {
    !event.kind.is_access()
        && event
            .paths
            .iter()
            .any(|p| p.file_name().is_some_and(|n| names.contains(n)))
}
