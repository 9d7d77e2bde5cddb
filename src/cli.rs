//! What the subcommands print. `main.rs` parses arguments and calls these.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::apply::{self, ApplyError, Plan};
use crate::config::{self, Diagnostic, Severity};
use crate::kernel::{
    IpvsBackend, KernelError, LinkStatus, NetworkBackend, RouteStatus, ServiceStatus,
};
use crate::plan::ipvs;
use crate::plan::network::ROUTE_PROTOCOL;
use crate::store::{ConfigFiles, StoreError};

/// Exit statuses of `lbconsole check`.
pub const EXIT_VALID: u8 = 0;
pub const EXIT_INVALID: u8 = 1;
pub const EXIT_UNREADABLE: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Serialize)]
struct CheckReport<'a> {
    config_dir: &'a Path,
    valid: bool,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    path: String,
    #[serde(flatten)]
    diagnostic: &'a Diagnostic,
}

/// `lbconsole check`: validates the config dir and returns the exit status.
pub fn check(dir: &Path, format: Format, out: &mut dyn Write) -> Result<u8, StoreError> {
    let files = ConfigFiles::read(dir)?;
    let checked = config::check(files.sources());
    let errors = checked.count(Severity::Error);
    let warnings = checked.count(Severity::Warning);
    // A closed stdout (`| head`) is no reason to change the verdict.
    let _ = match format {
        Format::Text => write_text(dir, &checked.diagnostics, errors, warnings, out),
        Format::Json => {
            let report = CheckReport {
                config_dir: dir,
                valid: errors == 0,
                errors,
                warnings,
                diagnostics: checked
                    .diagnostics
                    .iter()
                    .map(|diagnostic| JsonDiagnostic {
                        path: dir.join(diagnostic.file.file_name()).display().to_string(),
                        diagnostic,
                    })
                    .collect(),
            };
            serde_json::to_writer_pretty(&mut *out, &report)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
        }
    };
    Ok(if errors == 0 {
        EXIT_VALID
    } else {
        EXIT_INVALID
    })
}

fn write_text(
    dir: &Path,
    diagnostics: &[Diagnostic],
    errors: usize,
    warnings: usize,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    for diagnostic in diagnostics {
        writeln!(out, "{}", diagnostic.display_in(dir))?;
    }
    let verdict = if errors == 0 { "valid" } else { "invalid" };
    writeln!(
        out,
        "{}: {verdict}, {} and {}",
        dir.display(),
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// Why a command that changes the kernel did nothing, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the configuration has {}; nothing was applied (see `lbconsole check`)", plural(*.0, "error"))]
    Invalid(usize),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("lvs.conf has {}, but {error}; nothing was applied", plural(*directors, "director"))]
    NoIpvs {
        directors: usize,
        error: KernelError,
    },
}

impl From<crate::kernel::KernelError> for CommandError {
    fn from(error: crate::kernel::KernelError) -> Self {
        Self::Apply(ApplyError::Kernel(error))
    }
}

/// `lbconsole apply [--dry-run]`: brings the kernel to the config dir's network
/// and LVS configuration. Prints the plan, one operation per line, or `no changes`.
///
/// `ipvs` is the IPVS backend, or why there is none (no `ip_vs` module): that is
/// an error only when `lvs.conf` has directors.
pub async fn apply<N: NetworkBackend, I: IpvsBackend>(
    config_dir: &Path,
    state_dir: &Path,
    dry_run: bool,
    network: &mut N,
    mut ipvs: Result<I, KernelError>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let files = ConfigFiles::read(config_dir)?;
    let checked = config::check(files.sources());
    for diagnostic in &checked.diagnostics {
        let _ = writeln!(err, "{}", diagnostic.display_in(config_dir));
    }
    let plan = plan_apply(&checked, state_dir, network, ipvs.as_mut().map_err(|e| &*e)).await?;
    if plan.is_empty() {
        let _ = writeln!(out, "no changes");
    } else {
        let _ = write!(out, "{plan}");
    }
    if dry_run {
        return Ok(());
    }
    carry_out(&files, &plan, state_dir, network, ipvs.as_mut().ok()).await?;
    if !plan.is_empty() {
        let _ = writeln!(out, "applied {}", plural(plan.len(), "change"));
    }
    Ok(())
}

/// The plan that would bring the kernel to `checked`, refused when it has errors,
/// or when `lvs.conf` has directors and there is no IPVS. Shared by `apply` and
/// the console, which shows it before carrying it out.
pub async fn plan_apply<N: NetworkBackend, I: IpvsBackend>(
    checked: &config::Checked,
    state_dir: &Path,
    network: &mut N,
    ipvs: Result<&mut I, &KernelError>,
) -> Result<Plan, CommandError> {
    let errors = checked.count(Severity::Error);
    if errors > 0 {
        return Err(CommandError::Invalid(errors));
    }
    let config = &checked.config;
    // Only the network part of what runs now matters to the plan (its addresses
    // are handed back); parsing the rest would cost as much as the new config.
    let previous = ConfigFiles::read_running(state_dir)?
        .map(|running| config::parse::parse_network(&running.network).0);
    let mut plan = Plan {
        network: apply::plan_network(network, &config.network, previous.as_ref()).await?,
        ipvs: Vec::new(),
    };
    match ipvs {
        Ok(backend) => plan.ipvs = apply::plan_ipvs(backend, &config.lvs).await?,
        Err(_) if config.lvs.directors.is_empty() => {}
        Err(error) => {
            return Err(CommandError::NoIpvs {
                directors: config.lvs.directors.len(),
                error: error.clone(),
            });
        }
    }
    Ok(plan)
}

/// Carries out `plan` (made by [`plan_apply`] from `files`) as one transaction
/// and records `files` as what the kernel runs.
pub async fn carry_out<N: NetworkBackend, I: IpvsBackend>(
    files: &ConfigFiles,
    plan: &Plan,
    state_dir: &Path,
    network: &mut N,
    ipvs: Option<&mut I>,
) -> Result<(), CommandError> {
    match ipvs {
        Some(backend) => apply::execute(network, backend, plan).await?,
        None => apply::execute_network(network, &plan.network).await?,
    }
    running_copy(files).write_running(state_dir)?;
    Ok(())
}

/// What the running copy records of `files`: flows are not programmed yet, so
/// the running copy has none.
pub fn running_copy(files: &ConfigFiles) -> ConfigFiles {
    ConfigFiles {
        network: files.network.clone(),
        flows: Vec::new(),
        lvs: files.lvs.clone(),
    }
}

#[derive(Serialize)]
struct StatusReport<'a> {
    links: &'a [LinkStatus],
    routes: &'a [RouteStatus],
    ipvs: IpvsReport<'a>,
}

#[derive(Serialize)]
struct IpvsReport<'a> {
    available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    services: Vec<NamedService<'a>>,
}

#[derive(Serialize)]
struct NamedService<'a> {
    /// The director of the running configuration this service belongs to.
    director: Option<&'a str>,
    #[serde(flatten)]
    service: &'a ServiceStatus,
}

/// `lbconsole status [--json]`: links with their state, bond mode, active slave
/// and each slave's state; addresses; routes per table; IPVS services with their
/// real servers, weights, connections and rates.
pub async fn status<N: NetworkBackend, I: IpvsBackend>(
    network: &mut N,
    ipvs: Result<I, KernelError>,
    state_dir: &Path,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let observation = network.observe().await?;
    let services = match ipvs {
        Ok(mut backend) => backend.observe().await.map(|o| o.services),
        Err(error) => Err(error),
    };
    let names = ConfigFiles::read_running(state_dir)?
        .map(|running| ipvs::service_names(&config::parse::parse_lvs(&running.lvs).0))
        .unwrap_or_default();
    let report = StatusReport {
        links: &observation.links,
        routes: &observation.routes,
        ipvs: IpvsReport {
            available: services.is_ok(),
            error: services.as_ref().err().map(ToString::to_string),
            services: services
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|service| NamedService {
                    director: names.get(&service.key).map(String::as_str),
                    service,
                })
                .collect(),
        },
    };
    let _ = match format {
        Format::Json => serde_json::to_writer_pretty(&mut *out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
        Format::Text => write_status(&report, out),
    };
    Ok(())
}

fn write_status(report: &StatusReport<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    let (links, routes) = (report.links, report.routes);
    writeln!(out, "Links")?;
    for link in links.iter().filter(|l| l.master.is_none()) {
        let kind = match (&link.bond, &link.vlan) {
            (Some(bond), _) => format!("bond {}", bond.mode),
            (_, Some(vlan)) => format!("vlan {} on {}", vlan.id, vlan.parent),
            _ if link.kind.is_empty() => "ethernet".to_owned(),
            _ => link.kind.clone(),
        };
        let addresses: Vec<String> = link.addresses.iter().map(ToString::to_string).collect();
        let owner = if link.owned { "  (lbconsole)" } else { "" };
        writeln!(
            out,
            "  {:<15} {:<6} mtu {:<5} {kind}{owner}",
            link.name,
            state(link),
            link.mtu
        )?;
        if !addresses.is_empty() {
            writeln!(out, "  {:<15} {}", "", addresses.join(" "))?;
        }
        if let Some(bond) = &link.bond {
            if let Some(active) = &bond.active_slave {
                writeln!(out, "  {:<15} active slave {active}", "")?;
            }
            for slave in &bond.slaves {
                writeln!(
                    out,
                    "    slave {:<11} {:<6} mii {:<10} link failures {}",
                    slave.name, slave.state, slave.mii_status, slave.link_failures
                )?;
            }
        }
    }
    writeln!(out, "Routes (ours: proto {ROUTE_PROTOCOL})")?;
    let mut tables: Vec<u32> = routes.iter().map(|r| r.table).collect();
    tables.sort_unstable();
    tables.dedup();
    for table in tables {
        let name = if table == 254 {
            "main".to_owned()
        } else {
            table.to_string()
        };
        writeln!(out, "  table {name}")?;
        for route in routes.iter().filter(|r| r.table == table) {
            let destination = if route.destination.prefix == 0 {
                "default".to_owned()
            } else {
                route.destination.to_string()
            };
            let mut line = format!("    {destination}");
            if let Some(gateway) = route.gateway {
                line.push_str(&format!(" via {gateway}"));
            }
            if let Some(device) = &route.device {
                line.push_str(&format!(" dev {device}"));
            }
            line.push_str(if route.ours { "  (lbconsole)" } else { "" });
            writeln!(out, "{line}")?;
        }
    }
    write_ipvs(&report.ipvs, out)
}

fn write_ipvs(ipvs: &IpvsReport<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "LVS")?;
    if let Some(error) = &ipvs.error {
        return writeln!(out, "  {error}");
    }
    if ipvs.services.is_empty() {
        writeln!(out, "  no virtual services")?;
    }
    for NamedService { director, service } in &ipvs.services {
        let persistent = if service.flags & ipvs::FLAG_PERSISTENT != 0 {
            format!("  persistent {}s", service.timeout)
        } else {
            String::new()
        };
        writeln!(
            out,
            "  {:<15} {}  {}{persistent}  {} conn/s",
            director.unwrap_or("-"),
            service.key,
            service.scheduler,
            service.stats.connections_per_second
        )?;
        for dest in &service.destinations {
            writeln!(
                out,
                "    -> {:<21} {:<6} weight {:<5} active {:<5} inactive {:<5} {} conn/s",
                format!("{}:{}", dest.address, dest.port),
                dest.forward.name(),
                dest.weight,
                dest.active_connections,
                dest.inactive_connections,
                dest.stats.connections_per_second
            )?;
        }
    }
    Ok(())
}

fn state(link: &LinkStatus) -> &str {
    if link.admin_up {
        &link.oper_state
    } else {
        "down"
    }
}
