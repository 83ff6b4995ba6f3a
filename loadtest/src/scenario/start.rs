//! Starting the peers a run compares: every Portcullis peer (`[gateway]` and
//! `[[gateways]]`), nginx and HAProxy, as the scenario enables them and
//! `--peers` selects; each ready on return, or reported as skipped with the
//! reason (a gateway that refuses a config naming `requires`, a peer that is
//! not installed).

use super::cpus::CpuList;
use super::file::Scenario;
use super::peers::{self, Ctx, Peer};
use super::{gateways, procs, ScenarioArgs};
use std::path::Path;

/// The started peers, in the scenario's order, and the skipped ones with why.
pub type Started = (Vec<Peer>, Vec<(String, String)>);

pub fn peers(
    scenario: &Scenario,
    args: &ScenarioArgs,
    gateway_bin: &Path,
    ctx: &Ctx,
) -> anyhow::Result<Started> {
    let wanted = |name: &str| {
        args.peers
            .as_ref()
            .is_none_or(|p| p.iter().any(|x| x == name))
    };
    let helper_cpus = args.upstream_cpus.as_ref().unwrap_or(&args.load_cpus);
    let mut started: Vec<Peer> = Vec::new();
    let mut skipped: Vec<(String, String)> = Vec::new();
    for (name, section) in scenario.gateway_peers() {
        if !wanted(&name) {
            continue;
        }
        let outcome = gateways::start(
            scenario,
            &name,
            section,
            gateway_bin,
            ctx,
            &args.proxy_cpus,
            helper_cpus,
        )?;
        match outcome {
            Ok(peer) => started.push(peer),
            Err(message) => {
                if scenario.file.requires.is_empty() {
                    anyhow::bail!("the gateway refused {name}'s config: {message}");
                }
                let reason = format!(
                    "skipped: gateway lacks feature {} (portcullis check: {message})",
                    scenario.file.requires.join(", ")
                );
                eprintln!("{name}: {reason}");
                skipped.push((name, reason));
            }
        }
    }
    type StartPeer = fn(&Scenario, &Ctx, u16, &CpuList) -> anyhow::Result<Peer>;
    let others: [(&str, bool, StartPeer); 2] = [
        ("nginx", scenario.file.nginx.enabled, peers::start_nginx),
        (
            "haproxy",
            scenario.file.haproxy.enabled,
            peers::start_haproxy,
        ),
    ];
    for (name, enabled, start) in others {
        if !(wanted(name) && enabled) {
            continue;
        }
        let binary = format!("/usr/sbin/{name}");
        if Path::new(&binary).exists() {
            started.push(start(scenario, ctx, procs::free_port()?, &args.proxy_cpus)?);
        } else {
            skipped.push((
                name.into(),
                format!(
                    "skipped: {binary} is not installed (loadtest/install-peers.sh installs it)"
                ),
            ));
        }
    }
    for peer in &mut started {
        let addr = ([127, 0, 0, 1], peer.port).into();
        let status = procs::wait_ready(&mut peer.proc, addr, "/", scenario.file.tls)?;
        eprintln!(
            "{} ready on 127.0.0.1:{} (pid {}, probe status {status})",
            peer.name, peer.port, peer.pid
        );
    }
    Ok((started, skipped))
}
