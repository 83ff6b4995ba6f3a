//! One monoio runtime per thread: io_uring when the kernel allows it, the
//! epoll driver otherwise (said once on stderr), as the gateway's workers do.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

/// io_uring submission queue size per thread.
const RING_ENTRIES: u32 = 4096;

static FALLBACK_SAID: AtomicBool = AtomicBool::new(false);

/// Runs `future` to completion on a new runtime on the current thread.
pub fn block_on<F: Future>(future: F) -> std::io::Result<F::Output> {
    match uring_runtime() {
        Ok(mut runtime) => Ok(runtime.block_on(future)),
        Err(e) => {
            if !FALLBACK_SAID.swap(true, Ordering::Relaxed) {
                eprintln!("portcullis-load: io_uring is unavailable ({e}); using the epoll driver");
            }
            let mut runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()?;
            Ok(runtime.block_on(future))
        }
    }
}

type UringRuntime = monoio::Runtime<monoio::time::TimeDriver<monoio::IoUringDriver>>;

fn uring_runtime() -> std::io::Result<UringRuntime> {
    if std::env::var_os("PORTCULLIS_LOAD_EPOLL").is_some() {
        return Err(std::io::Error::other("PORTCULLIS_LOAD_EPOLL is set"));
    }
    let mut tuned = io_uring::IoUring::builder();
    tuned.setup_coop_taskrun().setup_single_issuer();
    let built = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .with_entries(RING_ENTRIES)
        .uring_builder(tuned)
        .enable_timer()
        .build();
    match built {
        Ok(runtime) => Ok(runtime),
        Err(_) => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .with_entries(RING_ENTRIES)
            .enable_timer()
            .build(),
    }
}
