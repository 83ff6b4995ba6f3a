//! `sd_notify` as systemd sees it: the test binds a real Unix datagram socket, passes it as
//! `NOTIFY_SOCKET`, and reads what the gateway reports: `READY=1` once it serves,
//! `RELOADING=1` (with `MONOTONIC_USEC`) then `READY=1` around a SIGHUP reload,
//! `STOPPING=1` on SIGTERM, and after a takeover `MAINPID=` of the successor with no
//! `STOPPING=1` from the process it replaced.

mod common;

use common::*;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

const CONFIG: &str = "[[listeners]]\nname = \"public\"\naddress = \"127.0.0.1:0\"\n\n[[deployments]]\nname = \"api\"\nlistener = \"public\"\n\n[[deployments.routes]]\npath = \"/hello\"\nbackend = { type = \"stock\", status = 200 }\n";

/// The next datagram (5 s at most).
fn next(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .expect("no sd_notify datagram within 5 s");
    String::from_utf8_lossy(&buf[..n]).to_string()
}

fn notify_socket() -> (tempfile::TempDir, UnixDatagram, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    (dir, socket, path.to_str().unwrap().to_string())
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

// Rule: READY=1 once serving; RELOADING=1 with MONOTONIC_USEC, then READY=1, on SIGHUP;
// STOPPING=1 on SIGTERM.
#[test]
fn ready_reloading_and_stopping_are_reported() {
    let (_dir, socket, path) = notify_socket();
    let mut gw = Gateway::start_with_env(CONFIG, &["--no-watch"], &[("NOTIFY_SOCKET", &path)]);
    let ready = next(&socket);
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    assert!(ready.contains("STATUS="), "{ready:?}");
    assert_eq!(
        get(gw.addr(), "/hello").status,
        200,
        "READY=1 came before serving"
    );

    signal(gw.pid(), "HUP");
    let reloading = next(&socket);
    assert!(reloading.starts_with("RELOADING=1\n"), "{reloading:?}");
    let usec: u64 = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"));
    assert!(usec > 0);
    assert!(next(&socket).starts_with("READY=1\n"));

    gw.sigterm();
    assert!(next(&socket).starts_with("STOPPING=1\n"));
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("still running");
    assert_eq!(status.code(), Some(0));
}

// Rule: a successor reports MAINPID=<its pid> with READY=1; the replaced process never says
// STOPPING=1 (systemd would take the service for stopping).
#[test]
fn takeover_moves_mainpid_without_stopping() {
    let (_dir, socket, path) = notify_socket();
    let control_dir = tempfile::tempdir().unwrap();
    let control = control_dir.path().join("control.sock");
    let control = control.to_str().unwrap();
    let env = [("NOTIFY_SOCKET", path.as_str())];
    let mut old = Gateway::start_with_env(CONFIG, &["--control-socket", control], &env);
    assert!(next(&socket).starts_with("READY=1\n"));
    let new = Gateway::start_with_env(CONFIG, &["--control-socket", control, "--takeover"], &env);
    let handed = next(&socket);
    assert!(
        handed.starts_with(&format!("MAINPID={}\nREADY=1\n", new.pid())),
        "{handed:?}"
    );
    let status = old
        .wait_exit(Duration::from_secs(10))
        .expect("old still running");
    assert_eq!(status.code(), Some(0));
    // The old process has exited, so everything it ever sent is already queued on the
    // socket (a datagram is queued at the receiver before its send returns): a look
    // without waiting sees it all.
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    if let Ok(n) = socket.recv(&mut buf) {
        panic!(
            "unexpected datagram after the takeover: {:?}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    assert_eq!(get(new.addr(), "/hello").status, 200);
}
