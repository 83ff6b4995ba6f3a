//! Real `redis-server` processes for the cluster tests: each on its own
//! loopback port with its own data directory, stopped by PID (SIGKILL on
//! drop), paused with SIGSTOP/SIGCONT. Keys are read back with the `redis`
//! client. `redis-server` and `redis-cli` come from
//! `scripts/install-test-deps.sh`.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server gets to answer PING after it was started.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// True when the tools are installed; under CI=true their absence is a failure.
pub fn redis_available() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "redis-server is missing: run scripts/install-test-deps.sh"
        );
        eprintln!("skipped: redis-server is missing (scripts/install-test-deps.sh installs it)");
    }
    found
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free loopback port whose Redis Cluster bus port (port + 10000) is free
/// too. Both lie below the kernel's ephemeral range (32768 and up), so no
/// outgoing connection of a concurrent test can take either between this
/// check and Redis binding it.
pub fn free_cluster_port() -> u16 {
    const LOW: u16 = 12_000;
    const SPAN: u16 = 10_000;
    let seed = u64::from(std::process::id());
    let mut candidate = LOW + (seed % u64::from(SPAN)) as u16;
    loop {
        let both = TcpListener::bind(("127.0.0.1", candidate)).is_ok()
            && TcpListener::bind(("127.0.0.1", candidate + 10_000)).is_ok();
        if both {
            return candidate;
        }
        candidate = LOW + (candidate - LOW + 7) % SPAN;
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status();
}

/// One `redis-server` child process.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    args: Vec<String>,
    /// Extra arguments for `redis-cli` (TLS, password).
    pub cli_args: Vec<String>,
    /// URL the `redis` client uses to read keys back.
    pub url: String,
}

impl RedisServer {
    /// A plain server without persistence on a fresh port, in `dir`.
    pub fn start(dir: &Path) -> RedisServer {
        RedisServer::start_with(dir, free_port(), &[])
    }

    /// A server on `port` with extra `redis-server` arguments.
    pub fn start_with(dir: &Path, port: u16, extra: &[&str]) -> RedisServer {
        let server = RedisServer::start_with_deferred(dir, port, extra);
        server.wait_ready();
        server
    }

    /// Like [`RedisServer::start_with`] without waiting for PING (the
    /// caller sets `cli_args` first, e.g. for TLS, then calls `wait_ready`).
    pub fn start_with_deferred(dir: &Path, port: u16, extra: &[&str]) -> RedisServer {
        std::fs::create_dir_all(dir).unwrap();
        let mut args: Vec<String> = [
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--dir",
            &dir.display().to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory-policy",
            "noeviction",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut server = RedisServer {
            child: None,
            port,
            dir: dir.to_path_buf(),
            args,
            cli_args: Vec::new(),
            url: format!("redis://127.0.0.1:{port}"),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        self.spawn_process();
    }

    fn spawn_process(&mut self) {
        let log = std::fs::File::create(self.dir.join("redis.log")).unwrap();
        let child = Command::new("redis-server")
            .args(&self.args)
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
    }

    /// Waits until the server answers PING.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if self.cli(&["PING"]).trim() == "PONG" {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "redis-server on {} did not answer within {READY_WITHIN:?}:\n{}",
            self.port,
            std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Runs `redis-cli` against this server; its standard output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(&self.cli_args)
            .args(args)
            .stderr(Stdio::null())
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// SIGSTOP: the server stops answering (connections stay open).
    pub fn pause(&self) {
        signal(self.pid(), "STOP");
    }

    /// SIGCONT.
    pub fn resume(&self) {
        signal(self.pid(), "CONT");
    }

    /// SIGKILL, then waits for the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "CONT");
            signal(child.id(), "KILL");
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same port, empty.
    pub fn restart_empty(&mut self) {
        self.kill();
        for entry in std::fs::read_dir(&self.dir).unwrap().flatten() {
            if entry
                .path()
                .extension()
                .is_some_and(|e| e == "rdb" || e == "aof")
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        self.spawn();
        self.wait_ready();
    }

    /// Every key (SCAN) with every value as text (strings and hash fields).
    pub fn dump(&self) -> Vec<(String, Vec<String>)> {
        let keys: Vec<String> = self
            .cli(&["--scan"])
            .lines()
            .map(str::to_string)
            .filter(|k| !k.is_empty())
            .collect();
        keys.into_iter()
            .map(|key| {
                let kind = self.cli(&["TYPE", &key]).trim().to_string();
                let values = match kind.as_str() {
                    "hash" => self.cli(&["HGETALL", &key]),
                    "string" => self.cli(&["GET", &key]),
                    _ => String::new(),
                };
                (key, values.lines().map(str::to_string).collect())
            })
            .collect()
    }

    /// The sum of a quota hash's fields (every node's contribution).
    pub fn hash_sum(&self, key: &str) -> u64 {
        let text = self.cli(&["HGETALL", key]);
        let lines: Vec<&str> = text.lines().collect();
        lines
            .chunks(2)
            .filter_map(|pair| pair.get(1)?.trim().parse::<u64>().ok())
            .sum()
    }

    /// Keys whose name contains `part`.
    pub fn keys_with(&self, part: &str) -> Vec<String> {
        self.cli(&["--scan"])
            .lines()
            .filter(|k| k.contains(part))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
