//! What the subcommands print. `main.rs` parses arguments and calls these.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::apply::{self, ApplyError};
use crate::config::{self, Diagnostic, Severity};
use crate::kernel::{LinkStatus, NetworkBackend, RouteStatus};
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
}

impl From<crate::kernel::KernelError> for CommandError {
    fn from(error: crate::kernel::KernelError) -> Self {
        Self::Apply(ApplyError::Kernel(error))
    }
}

/// `lbconsole apply [--dry-run]`: brings the kernel to the config dir's network
/// configuration. Prints the plan, one step per line, or `no changes`.
pub async fn apply<B: NetworkBackend>(
    config_dir: &Path,
    state_dir: &Path,
    dry_run: bool,
    backend: &mut B,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let files = ConfigFiles::read(config_dir)?;
    let checked = config::check(files.sources());
    for diagnostic in &checked.diagnostics {
        let _ = writeln!(err, "{}", diagnostic.display_in(config_dir));
    }
    let errors = checked.count(Severity::Error);
    if errors > 0 {
        return Err(CommandError::Invalid(errors));
    }
    let previous = ConfigFiles::read_running(state_dir)?
        .map(|running| config::check(running.sources()).config.network);
    let steps = apply::plan_network(backend, &checked.config.network, previous.as_ref()).await?;
    if steps.is_empty() {
        let _ = writeln!(out, "no changes");
    } else {
        for step in &steps {
            let _ = writeln!(out, "{step}");
        }
    }
    if dry_run {
        return Ok(());
    }
    apply::execute(backend, &steps).await?;
    // Only the Network part is programmed so far: the running copy says so.
    let running = ConfigFiles {
        network: files.network,
        ..ConfigFiles::default()
    };
    running.write_running(state_dir)?;
    if !steps.is_empty() {
        let _ = writeln!(out, "applied {}", plural(steps.len(), "change"));
    }
    Ok(())
}

#[derive(Serialize)]
struct StatusReport<'a> {
    links: &'a [LinkStatus],
    routes: &'a [RouteStatus],
}

/// `lbconsole status [--json]`: links with their state, bond mode, active slave
/// and each slave's state; addresses; routes per table.
pub async fn status<B: NetworkBackend>(
    backend: &mut B,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let observation = backend.observe().await.map_err(ApplyError::from)?;
    let _ = match format {
        Format::Json => {
            let report = StatusReport {
                links: &observation.links,
                routes: &observation.routes,
            };
            serde_json::to_writer_pretty(&mut *out, &report)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
        }
        Format::Text => write_status(&observation.links, &observation.routes, out),
    };
    Ok(())
}

fn write_status(
    links: &[LinkStatus],
    routes: &[RouteStatus],
    out: &mut dyn Write,
) -> std::io::Result<()> {
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
    Ok(())
}

fn state(link: &LinkStatus) -> &str {
    if link.admin_up {
        &link.oper_state
    } else {
        "down"
    }
}
