//! The peer tool: keepalived, validating the same LVS configuration.
//!
//! [`render`] writes a checked `lvs.conf` model as `keepalived.conf`; [`config_test`]
//! runs `keepalived --config-test` on it. keepalived only knows the LVS part, so
//! the benchmark compares it with `config::check` on `lvs.conf` alone.

use std::fmt::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lbconsole::config::model::LvsConfig;
use lbconsole::config::model::lvs::{CheckMethod, Director, ForwardMode};
use lbconsole::plan::ipvs::kernel_scheduler;

/// What keepalived ships as on Debian; where it installs the binary.
pub const PROGRAM: &str = "keepalived";
const SYSTEM_DIRS: [&str; 2] = ["/usr/sbin", "/sbin"];

/// The keepalived.conf text and what it holds.
pub struct Rendered {
    pub text: String,
    pub virtual_servers: usize,
    pub real_servers: usize,
    pub sorry_servers: usize,
}

fn lb_kind(mode: ForwardMode) -> &'static str {
    match mode {
        ForwardMode::Nat => "NAT",
        ForwardMode::Gateway => "DR",
        ForwardMode::Tunnel => "TUN",
    }
}

/// One `virtual_server` per director: `IP PORT` with a VIP, else `fwmark N` with
/// N the director's 1-based index.
pub fn render(lvs: &LvsConfig) -> Rendered {
    let servers: usize = lvs.directors.iter().map(|d| d.servers.len()).sum();
    let mut rendered = Rendered {
        text: String::with_capacity(64 * lvs.directors.len() + 96 * servers),
        virtual_servers: 0,
        real_servers: 0,
        sorry_servers: 0,
    };
    for (index, director) in lvs.directors.iter().enumerate() {
        virtual_server(&mut rendered, index + 1, director);
    }
    rendered
}

fn virtual_server(rendered: &mut Rendered, fwmark: usize, director: &Director) {
    let out = &mut rendered.text;
    let check = &director.check;
    let service_port = director
        .service
        .as_ref()
        .and_then(|s| s.value.port)
        .map(u16::from);
    let _ = writeln!(out, "# director {}", director.name.value);
    match &director.service {
        Some(service) => {
            let _ = writeln!(
                out,
                "virtual_server {} {} {{",
                service.value.address,
                service_port.unwrap_or(0)
            );
        }
        None => {
            let _ = writeln!(out, "virtual_server fwmark {fwmark} {{");
        }
    }
    let _ = writeln!(out, "    delay_loop {}", check.interval());
    // The same IPVS scheduler lbconsole itself would program.
    let _ = writeln!(out, "    lb_algo {}", kernel_scheduler(director));
    let _ = writeln!(out, "    lb_kind {}", lb_kind(director.forward_mode()));
    if let Some(service) = &director.service {
        let _ = writeln!(out, "    protocol {}", service.value.protocol().keyword());
    }
    if let Some(persistence) = &director.persistence {
        let _ = writeln!(out, "    persistence_timeout {}", persistence.timeout());
        let _ = writeln!(
            out,
            "    persistence_granularity {}",
            netmask(persistence.netmask_prefix(director.family()))
        );
    }
    if check.inhibit {
        out.push_str("    inhibit_on_failure\n");
    }

    // keepalived takes one sorry server; any further one is an ordinary server.
    let sorry = director.servers.iter().position(|s| s.sorry);
    for (i, server) in director.servers.iter().enumerate() {
        let port = server.port.map(u16::from).or(service_port).unwrap_or(0);
        if Some(i) == sorry {
            let _ = writeln!(out, "    sorry_server {} {port}", server.address);
            rendered.sorry_servers += 1;
            continue;
        }
        rendered.real_servers += 1;
        let _ = writeln!(out, "    real_server {} {port} {{", server.address);
        let _ = writeln!(out, "        weight {}", server.weight());
        if server.check {
            checker(out, director);
        }
        out.push_str("    }\n");
    }
    out.push_str("}\n");
    rendered.virtual_servers += 1;
}

/// The health check of one real server: HTTP_GET for `option httpcheck`,
/// TCP_CHECK for every other method (keepalived has no ARP check).
fn checker(out: &mut String, director: &Director) {
    let check = &director.check;
    match director.check_method() {
        CheckMethod::Http(http) => {
            out.push_str("        HTTP_GET {\n            url {\n");
            let _ = writeln!(out, "                path {}", http.uri());
            let _ = writeln!(out, "                status_code {}", http.statuscode());
            out.push_str("            }\n");
            if let Some(vhost) = &http.vhost {
                let _ = writeln!(out, "            virtualhost {vhost}");
            }
        }
        CheckMethod::Tcp | CheckMethod::Arp { .. } | CheckMethod::Icmp => {
            out.push_str("        TCP_CHECK {\n");
        }
    }
    if let Some(port) = &check.port {
        let _ = writeln!(out, "            connect_port {}", port.value);
    }
    if let Some(source) = &check.source {
        let _ = writeln!(out, "            bindto {}", source.value);
    }
    let _ = writeln!(out, "            connect_timeout {}", check.timeout());
    if check.fall() > 1 {
        // `fall N`: N failed checks in a row, so N - 1 retries after the first.
        let _ = writeln!(out, "            retry {}", check.fall() - 1);
    }
    out.push_str("        }\n");
}

/// A prefix length as a dotted netmask.
fn netmask(prefix: u8) -> Ipv4Addr {
    let bits = u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0);
    Ipv4Addr::from(bits)
}

/// The keepalived binary: on `PATH`, else where Debian installs it.
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SYSTEM_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(PROGRAM))
        .find(|candidate| candidate.is_file())
}

/// The arguments of one config test of `file`.
pub fn config_test_args(file: &Path) -> Vec<String> {
    vec![
        "--config-test".to_owned(),
        "--use-file".to_owned(),
        file.display().to_string(),
    ]
}

/// Runs `keepalived --config-test` once: how long it took, or why it failed.
pub fn config_test(program: &Path, file: &Path) -> Result<Duration, String> {
    let start = Instant::now();
    let output = Command::new(program)
        .args(config_test_args(file))
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let elapsed = start.elapsed();
    let said = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !said.trim().is_empty() {
        return Err(format!(
            "`{} {}` exited with {} and said: {}",
            program.display(),
            config_test_args(file).join(" "),
            output.status,
            said.trim()
        ));
    }
    Ok(elapsed)
}
