//! The built-in upstream listens on every `--listen` address, each answering.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// One GET with Connection: close; the whole answer, or `None` if nothing listens.
fn get(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

// Three ports, two threads: every port answers 200 "hello".
#[test]
fn every_listen_address_answers() {
    let ports = [free_port(), free_port(), free_port()];
    let mut args = vec!["upstream".to_string(), "--threads".into(), "2".into()];
    for port in ports {
        args.extend(["--listen".into(), format!("127.0.0.1:{port}")]);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis-load"))
        .args(&args)
        .stdout(Stdio::null())
        .spawn()
        .expect("starting the upstream");
    let started = Instant::now();
    let mut answers = Vec::new();
    for port in ports {
        let answer = loop {
            if let Some(answer) = get(port) {
                break answer;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "port {port} never answered"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        answers.push(answer);
    }
    let _ = child.kill();
    let _ = child.wait();
    for answer in answers {
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nhello\n"), "{answer}");
    }
}

// A non-loopback address is refused with a clear message.
#[test]
fn non_loopback_listen_is_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_portcullis-load"))
        .args([
            "upstream",
            "--listen",
            "127.0.0.1:1",
            "--listen",
            "192.0.2.1:80",
        ])
        .output()
        .expect("running the upstream");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("--listen 192.0.2.1:80: must be a loopback address"),
        "{stderr}"
    );
}
