//! The scenario's services (`[[services]]`): processes such as a Redis the
//! gateway's config refers to, started before the proxies on the upstream's
//! cores, each on a free port, and stopped by PID after them (the guard's
//! `Drop`, also on error or Ctrl-C). A service is ready when its port accepts
//! connections.

use super::cpus::CpuList;
use super::file::{placeholder_name, substitute, Scenario};
use super::procs::{self, Proc};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A started service.
pub struct Service {
    pub name: String,
    pub port: u16,
    /// Stopped when dropped.
    pub proc: Proc,
}

/// The first program a scenario's services need that is not in PATH.
pub fn missing_program(scenario: &Scenario) -> Option<String> {
    scenario
        .file
        .services
        .iter()
        .find(|s| find_in_path(&s.program).is_none())
        .map(|s| s.program.clone())
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return path.is_file().then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Placeholders and their values, e.g. `REDIS` → `127.0.0.1:6400`.
pub type Placeholders = Vec<(String, String)>;

/// Starts every service, each ready on return; also returns the placeholders
/// they give the configs: `NAME` (`127.0.0.1:PORT`) and `NAME_PORT`.
pub fn start(
    scenario: &Scenario,
    run_dir: &Path,
    cpus: &CpuList,
) -> anyhow::Result<(Vec<Service>, Placeholders)> {
    let mut services = Vec::new();
    let mut placeholders = Vec::new();
    for section in &scenario.file.services {
        let port = procs::free_port()?;
        let port_text = port.to_string();
        let run = run_dir.display().to_string();
        let args: Vec<String> = section
            .args
            .iter()
            .map(|a| substitute(a, &[("PORT", &port_text), ("RUN_DIR", &run)]))
            .collect();
        let log = run_dir.join(format!("{}.log", section.name));
        let mut proc = procs::spawn(&section.name, cpus, &section.program, &args, &log, &[])?;
        wait_listening(&mut proc, port, &log)?;
        eprintln!(
            "{} ready on 127.0.0.1:{port} (pid {})",
            section.name,
            proc.pid()
        );
        let key = placeholder_name(&section.name);
        placeholders.push((format!("{key}_PORT"), port_text));
        placeholders.push((key, format!("127.0.0.1:{port}")));
        services.push(Service {
            name: section.name.clone(),
            port,
            proc,
        });
    }
    Ok((services, placeholders))
}

/// Waits until 127.0.0.1:`port` accepts connections, at most 15 s.
fn wait_listening(proc: &mut Proc, port: u16, log: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let addr = ([127, 0, 0, 1], port).into();
    loop {
        if let Err(e) = proc.check_alive() {
            let output = std::fs::read_to_string(log).unwrap_or_default();
            anyhow::bail!("{e}: {}", output.trim());
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(15) {
            anyhow::bail!("{} did not listen on {addr} within 15 s", proc.name);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::counters::redis_commandstats;

    // A real redis-server started as a service: its placeholders name its
    // port, it answers INFO commandstats there (our reader counts our own
    // INFO), and stopping it by PID ends it. Without redis-server the test
    // fails under CI=true and is skipped otherwise.
    #[test]
    fn redis_service_starts_answers_and_stops() {
        if find_in_path("redis-server").is_none() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "redis-server is not installed"
            );
            eprintln!("skipped: redis-server is not installed");
            return;
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("svc.toml");
        std::fs::write(
            &path,
            r#"
description = "service"
[[services]]
name = "redis-a"
program = "redis-server"
args = ["--bind", "127.0.0.1", "--port", "${PORT}", "--dir", "${RUN_DIR}", "--save", ""]
[gateway]
config = ""
[load]
path = "/"
"#,
        )
        .expect("writing the scenario");
        let scenario = Scenario::load(&path).expect("loads");
        assert_eq!(missing_program(&scenario), None);
        let cpus: CpuList = "0".parse().expect("cpu list");
        let (mut services, placeholders) =
            start(&scenario, dir.path(), &cpus).expect("redis-server starts");
        let port = services[0].port;
        assert_eq!(
            placeholders,
            [
                ("REDIS_A_PORT".to_string(), port.to_string()),
                ("REDIS_A".to_string(), format!("127.0.0.1:{port}")),
            ]
        );
        let first = redis_commandstats(port).expect("INFO commandstats");
        let second = redis_commandstats(port).expect("INFO commandstats");
        assert_eq!(
            second.get("info").copied(),
            Some(first.get("info").copied().unwrap_or(0) + 1)
        );
        let pid = services[0].proc.pid();
        services[0].proc.stop();
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        drop(services);
    }

    // A program that is not installed is named before anything starts.
    #[test]
    fn missing_program_is_named() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("svc.toml");
        std::fs::write(
            &path,
            "description = \"x\"\n[[services]]\nname = \"a\"\nprogram = \"no-such-program-here\"\n\
             [gateway]\nconfig = \"\"\n[load]\npath = \"/\"\n",
        )
        .expect("writing the scenario");
        let scenario = Scenario::load(&path).expect("loads");
        assert_eq!(
            missing_program(&scenario).as_deref(),
            Some("no-such-program-here")
        );
    }
}
