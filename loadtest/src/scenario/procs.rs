//! The processes a scenario starts: each pinned to its cores with `taskset`, with
//! the open-files limit raised to the hard limit, output to a file in the run
//! directory, and stopped by its PID when the scenario ends, fails or is
//! interrupted (the guard's `Drop`). Also what is read from `/proc` about
//! them: CPU time and resident memory.

use super::cpus::CpuList;
use anyhow::Context;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A started process.
pub struct Proc {
    pub name: String,
    pub child: Child,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails when the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!("{} exited ({status})", self.name);
        }
        Ok(())
    }

    /// Stops the process (SIGKILL, by PID) and reaps it; then its children
    /// that outlive it (an nginx master's workers), each by PID.
    pub fn stop(&mut self) {
        let mut children = Vec::new();
        if matches!(self.child.try_wait(), Ok(None)) {
            children = with_children(self.pid()).split_off(1);
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if !children.is_empty() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(children.iter().map(|pid| pid.to_string()))
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `program args` pinned to `cpus`, stdout and stderr to `log`.
pub fn spawn(
    name: &str,
    cpus: &CpuList,
    program: &str,
    args: &[String],
    log: &Path,
    env: &[(&str, &str)],
) -> anyhow::Result<Proc> {
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    let mut command = Command::new("bash");
    // `exec` keeps the PID: the process we stop is the program itself.
    command
        .arg("-c")
        .arg("ulimit -n 250000 2>/dev/null || ulimit -n \"$(ulimit -Hn)\"; exec taskset -c \"$0\" \"$@\"")
        .arg(cpus.to_string())
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    for (key, value) in env {
        command.env(key, value);
    }
    let child = command
        .spawn()
        .with_context(|| format!("starting {name} ({program})"))?;
    Ok(Proc {
        name: name.to_string(),
        child,
    })
}

/// Runs `program args` pinned to `cpus` to completion, at most `limit`; returns stdout.
pub fn run_pinned(
    cpus: &CpuList,
    program: &str,
    args: &[String],
    limit: Duration,
) -> anyhow::Result<String> {
    let mut child = Command::new("bash")
        .arg("-c")
        .arg("ulimit -n 250000 2>/dev/null || ulimit -n \"$(ulimit -Hn)\"; exec taskset -c \"$0\" \"$@\"")
        .arg(cpus.to_string())
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut stderr = child.stderr.take().context("stderr")?;
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > limit || crate::scenario::interrupted() {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("{program} stopped: over its time limit or interrupted");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        anyhow::bail!("{program} failed ({status}): {}", stderr.trim());
    }
    Ok(stdout)
}

/// Waits until `addr` answers a plain GET of `path` (any status), at most
/// 15 s; with `tls`, until it accepts connections (status 0).
pub fn wait_ready(proc: &mut Proc, addr: SocketAddr, path: &str, tls: bool) -> anyhow::Result<u16> {
    let started = Instant::now();
    loop {
        proc.check_alive()?;
        if tls {
            if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
                return Ok(0);
            }
        } else if let Ok(status) = probe(addr, path) {
            return Ok(status);
        }
        if started.elapsed() > Duration::from_secs(15) {
            anyhow::bail!("{} did not answer on {addr} within 15 s", proc.name);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One plain GET; the answer's status.
pub fn probe(addr: SocketAddr, path: &str) -> anyhow::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head)?;
    let text = std::str::from_utf8(&head[..n]).unwrap_or("");
    text.get(9..12)
        .and_then(|s| s.parse().ok())
        .context("no status line")
}

/// A free port on 127.0.0.1 (bound, then released).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Resident memory of `pid` in KiB (`VmRSS` in /proc/PID/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `pid` and its children: an nginx master and its workers.
fn with_children(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                all.extend(
                    text.split_whitespace()
                        .filter_map(|c| c.parse::<u32>().ok()),
                );
            }
        }
    }
    all
}

/// CPU seconds (user + system) of `pid` and its children, all threads.
pub fn tree_cpu_seconds(pid: u32) -> Option<f64> {
    let mut total = crate::report::proc_cpu_seconds(&pid.to_string())?;
    for child in with_children(pid).into_iter().skip(1) {
        total += crate::report::proc_cpu_seconds(&child.to_string()).unwrap_or(0.0);
    }
    Some(total)
}

/// Resident memory of `pid` and its children in KiB.
pub fn tree_rss_kib(pid: u32) -> Option<u64> {
    let mut total = rss_kib(pid)?;
    for child in with_children(pid).into_iter().skip(1) {
        total += rss_kib(child).unwrap_or(0);
    }
    Some(total)
}
