//! The proxies under test and how each is configured to do the same job:
//! Portcullis from the scenario's config (see `gateways.rs`); nginx and
//! HAProxy generated here
//! (one worker process, thread or gateway worker per proxy core, proxy to the
//! same upstream with keep-alive, no access log unless the scenario asks),
//! plus what the scenario adds to each.
//! Every config and generated file lives in the run directory.

use super::cpus::CpuList;
use super::file::{substitute, Scenario};
use super::procs::{self, Proc};
use anyhow::Context;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Everything a config may refer to.
pub struct Ctx {
    pub run_dir: PathBuf,
    /// The upstream's ports: `${UPSTREAM}`, `${UPSTREAM_2}`, …
    pub upstream_ports: Vec<u16>,
    pub admin_port: u16,
    /// The services' placeholders and values (`REDIS` → `127.0.0.1:PORT`, `REDIS_PORT`).
    pub services: Vec<(String, String)>,
    /// The TLS certificate chain (leaf) and key, when the scenario is TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The CA the load trusts.
    pub ca_file: Option<PathBuf>,
}

impl Ctx {
    /// The upstream's first port (`${UPSTREAM}`).
    pub fn upstream_port(&self) -> u16 {
        self.upstream_ports[0]
    }

    fn values(&self, listen: &str) -> anyhow::Result<Vec<(String, String)>> {
        let read = |p: &Option<PathBuf>| -> anyhow::Result<String> {
            match p {
                Some(p) => {
                    std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
                }
                None => Ok(String::new()),
            }
        };
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        let mut values = vec![
            ("LISTEN".to_string(), listen.to_string()),
            (
                "UPSTREAM".into(),
                format!("127.0.0.1:{}", self.upstream_port()),
            ),
            ("ADMIN".into(), format!("127.0.0.1:{}", self.admin_port)),
            ("RUN_DIR".into(), self.run_dir.display().to_string()),
            ("CERT_PEM".into(), read(&self.cert_file)?),
            ("KEY_PEM".into(), read(&self.key_file)?),
            ("CERT_FILE".into(), path(&self.cert_file)),
            ("KEY_FILE".into(), path(&self.key_file)),
        ];
        for (i, port) in self.upstream_ports.iter().enumerate().skip(1) {
            values.push((format!("UPSTREAM_{}", i + 1), format!("127.0.0.1:{port}")));
        }
        values.extend(self.services.iter().cloned());
        Ok(values)
    }

    /// `text` with every placeholder replaced; `extra` first, so it may
    /// override (a gateway node's own `${ADMIN}`).
    pub fn fill(&self, text: &str, listen: &str, extra: &[(&str, &str)]) -> anyhow::Result<String> {
        let values = self.values(listen)?;
        let mut all: Vec<(&str, &str)> = extra.to_vec();
        all.extend(values.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Ok(substitute(text, &all))
    }
}

/// A proxy started for the scenario.
pub struct Peer {
    pub name: String,
    pub port: u16,
    pub proc: Proc,
    /// The process whose CPU and memory are measured.
    pub pid: u32,
    /// A gateway's admin endpoint (its `/metrics` is read around each run).
    pub admin_port: Option<u16>,
    /// Processes that go with the peer and are not measured: a gateway's other nodes.
    pub helpers: Vec<Proc>,
}

/// Writes the generated files nginx and HAProxy configs may include:
/// routes (`routes.nginx.conf`, `routes.map`) and subscriber tokens
/// (`tokens.nginx.map`, `tokens.map`).
pub fn write_generated(scenario: &Scenario, ctx: &Ctx) -> anyhow::Result<()> {
    let generate = &scenario.file.generate;
    let prefix = generate.path_prefix.trim_end_matches('/');
    let (mut nginx_routes, mut map_routes) = (String::new(), String::new());
    for i in 0..generate.routes {
        let _ = writeln!(
            nginx_routes,
            "location = {prefix}/r{i} {{ proxy_pass http://up; }}"
        );
        let _ = writeln!(map_routes, "{prefix}/r{i} up");
    }
    let (mut nginx_tokens, mut map_tokens) = (String::new(), String::new());
    for i in 0..generate.subscribers {
        let _ = writeln!(nginx_tokens, "client-token-{i:010} sub{i};");
        let _ = writeln!(map_tokens, "client-token-{i:010} sub{i}");
    }
    for (name, text) in [
        ("routes.nginx.conf", nginx_routes),
        ("routes.map", map_routes),
        ("tokens.nginx.map", nginx_tokens),
        ("tokens.map", map_tokens),
    ] {
        std::fs::write(ctx.run_dir.join(name), text)?;
    }
    Ok(())
}

/// Starts nginx pinned to `cpus`: one process (no master) on one core, a
/// master and one worker per core on several.
pub fn start_nginx(
    scenario: &Scenario,
    ctx: &Ctx,
    port: u16,
    cpus: &CpuList,
) -> anyhow::Result<Peer> {
    let dir = ctx.run_dir.join("nginx");
    std::fs::create_dir_all(dir.join("logs"))?;
    let listen = format!("127.0.0.1:{port}");
    let section = &scenario.file.nginx;
    let tls = scenario.file.tls;
    let ssl = if tls {
        format!(
            "        ssl_certificate {};\n        ssl_certificate_key {};\n        ssl_protocols TLSv1.2 TLSv1.3;\n        ssl_session_cache off;\n        ssl_session_tickets off;\n",
            ctx.cert_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            ctx.key_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
        )
    } else {
        String::new()
    };
    let routes = if scenario.file.generate.routes > 0 {
        format!(
            "        include {}/routes.nginx.conf;\n",
            ctx.run_dir.display()
        )
    } else {
        String::new()
    };
    let prefix = &scenario.file.generate.path_prefix;
    let config = format!(
        "worker_processes {workers};\ndaemon off;\nmaster_process {master};\nerror_log {dir}/logs/error.log warn;\npid {dir}/nginx.pid;\nworker_rlimit_nofile 100000;\n\
         events {{ worker_connections 60000; }}\n\
         http {{\n    access_log off;\n    keepalive_requests 1000000;\n    keepalive_timeout 75s;\n    map_hash_max_size 262144;\n    map_hash_bucket_size 128;\n\
         \x20   client_body_temp_path {dir}/body;\n    proxy_temp_path {dir}/proxy;\n\
         \x20   upstream up {{ server {upstream}; keepalive 64; keepalive_requests 1000000; }}\n{global}\n\
         \x20   server {{\n        listen {listen} reuseport backlog=4096{ssl_flag};\n{ssl}\
         \x20       proxy_http_version 1.1;\n        proxy_set_header Connection \"\";\n{routes}\
         \x20       location {prefix}/ {{\n            proxy_pass http://up;\n{front}\n        }}\n    }}\n}}\n",
        dir = dir.display(),
        workers = cpus.count(),
        master = if cpus.count() > 1 { "on" } else { "off" },
        upstream = format_args!("127.0.0.1:{}", ctx.upstream_port()),
        global = ctx.fill(&section.global, &listen, &[])?,
        front = ctx.fill(&section.front, &listen, &[])?,
        ssl_flag = if tls { " ssl" } else { "" },
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, config)?;
    let args = vec![
        "-p".to_string(),
        dir.display().to_string(),
        "-c".to_string(),
        path.display().to_string(),
    ];
    let proc = procs::spawn(
        "nginx",
        cpus,
        "/usr/sbin/nginx",
        &args,
        &ctx.run_dir.join("nginx.log"),
        &[],
    )?;
    let pid = proc.pid();
    Ok(Peer {
        name: "nginx".into(),
        port,
        proc,
        pid,
        admin_port: None,
        helpers: Vec::new(),
    })
}

/// Starts HAProxy: one process, foreground, one thread per core of `cpus`,
/// pinned to them.
pub fn start_haproxy(
    scenario: &Scenario,
    ctx: &Ctx,
    port: u16,
    cpus: &CpuList,
) -> anyhow::Result<Peer> {
    let listen = format!("127.0.0.1:{port}");
    let section = &scenario.file.haproxy;
    let bind_tls = if scenario.file.tls {
        let combined = ctx.run_dir.join("haproxy.pem");
        let cert = std::fs::read_to_string(ctx.cert_file.as_ref().context("certificate")?)?;
        let key = std::fs::read_to_string(ctx.key_file.as_ref().context("key")?)?;
        std::fs::write(&combined, format!("{cert}{key}"))?;
        format!(" ssl crt {} alpn http/1.1", combined.display())
    } else {
        String::new()
    };
    let routes = if scenario.file.generate.routes > 0 {
        format!(
            "    http-request deny deny_status 404 unless {{ path,map({}/routes.map) -m found }}\n",
            ctx.run_dir.display()
        )
    } else {
        String::new()
    };
    let config = format!(
        "global\n    nbthread {threads}\n    maxconn 9000\n    tune.ssl.cachesize 0\n{global}\n\
         defaults\n    mode http\n    timeout connect 5s\n    timeout client 75s\n    timeout server 75s\n    timeout http-keep-alive 75s\n    option http-keep-alive\n    http-reuse always\n\n\
         frontend fe\n    bind {listen}{bind_tls}\n    maxconn 9000\n{routes}{front}\n    default_backend be\n\n\
         backend be\n    server up 127.0.0.1:{upstream} maxconn 10000\n",
        threads = cpus.count(),
        global = ctx.fill(&section.global, &listen, &[])?,
        front = ctx.fill(&section.front, &listen, &[])?,
        upstream = ctx.upstream_port(),
    );
    let path = ctx.run_dir.join("haproxy.cfg");
    std::fs::write(&path, config)?;
    let args = vec![
        "-f".to_string(),
        path.display().to_string(),
        "-db".to_string(),
    ];
    let proc = procs::spawn(
        "haproxy",
        cpus,
        "/usr/sbin/haproxy",
        &args,
        &ctx.run_dir.join("haproxy.log"),
        &[],
    )?;
    let pid = proc.pid();
    Ok(Peer {
        name: "haproxy".into(),
        port,
        proc,
        pid,
        admin_port: None,
        helpers: Vec::new(),
    })
}

/// A CA and a certificate for `localhost` / 127.0.0.1 signed by it (openssl).
pub fn make_certificates(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf, PathBuf)> {
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let output = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .context("running openssl (needed for TLS scenarios)")?;
        if !output.status.success() {
            anyhow::bail!(
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=portcullis-load test CA",
        ],
    ]
    .concat())?;
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat())?;
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )?;
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ])?;
    Ok((
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("ca.pem"),
    ))
}
