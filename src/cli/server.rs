//! `lbconsole server drain|disable|enable|weight|list`: the operators' live
//! overrides of real servers (`operate`), from the command line.

use std::io::Write;
use std::net::IpAddr;

use serde::Serialize;

use super::{CommandError, Format};
use crate::config::parse::parse_lvs;
use crate::health::publish::HealthSource;
use crate::health::state::{Health, roster};
use crate::kernel::IpvsBackend;
use crate::operate::{self, Change};
use crate::plan::overrides::{Hold, Override};
use crate::store::{ConfigFiles, Store, overrides};
use crate::text::printable;

/// Carries out `change` and says what it did, each IPVS operation on a line.
pub async fn change<I: IpvsBackend>(
    store: &Store,
    ipvs: &mut I,
    change: &Change,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let changed = operate::change(store, ipvs, change).await?;
    for op in &changed.ops {
        let _ = writeln!(out, "{op}");
    }
    let _ = match (&changed.now, &changed.previous) {
        (Some(now), _) => writeln!(out, "{}", printable(&now.to_string())),
        (None, Some(previous)) => writeln!(
            out,
            "server {} of {} enabled: back to its configured weight and to health control (was {} by {})",
            printable(&previous.server),
            printable(&previous.director),
            previous.hold.name(),
            printable(&previous.by)
        ),
        (None, None) => writeln!(
            out,
            "{} has no override: nothing to do",
            printable(&change.target.to_string())
        ),
    };
    let no_daemon = matches!(crate::health::publish::read(store.state_dir()), Ok(None));
    if no_daemon && matches!(change.hold, Some(Hold::Drain { .. })) {
        let _ = writeln!(
            out,
            "no daemon runs: the server stays at weight 0 until `lbconsole daemon` disables it, or `lbconsole server disable`"
        );
    }
    Ok(())
}

/// One real server of the running configuration, as `server list` shows it.
#[derive(Debug, Serialize)]
struct ServerRow {
    director: String,
    server: String,
    address: IpAddr,
    port: u16,
    /// The weight lvs.conf gives it.
    weight: u32,
    /// What IPVS holds: `None` when the server is out of IPVS.
    ipvs_weight: Option<u32>,
    active_connections: u32,
    inactive_connections: u32,
    /// `up`, `down`, or `None` when nothing checks it (no check, or no daemon).
    health: Option<Health>,
    #[serde(rename = "override")]
    hold: Option<Override>,
}

/// `lbconsole server list [--json]`: every real server of the running
/// configuration with its override, its health and what IPVS holds.
pub async fn list<I: IpvsBackend>(
    store: &Store,
    ipvs: Result<&mut I, &crate::kernel::KernelError>,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let running = ConfigFiles::read_running(store.state_dir())?.unwrap_or_default();
    let (config, _) = parse_lvs(&running.lvs);
    let overrides = overrides::read(store.state_dir())?;
    let reports = HealthSource::Daemon.reports(store.state_dir());
    let observed = match ipvs {
        Ok(ipvs) => ipvs.observe().await?,
        Err(_) if config.directors.is_empty() => Default::default(),
        Err(error) => return Err(error.clone().into()),
    };
    let rows: Vec<ServerRow> = roster(&config)
        .members
        .into_iter()
        .map(|member| {
            let dest = observed.dest(&member.service, &member.dest);
            let health = reports
                .iter()
                .find(|r| {
                    r.checked
                        && r.director == member.director
                        && r.server == member.server
                        && r.address == member.dest.address
                        && r.port == member.dest.port
                })
                .map(|r| r.health);
            ServerRow {
                hold: overrides.get(&member.director, &member.server).cloned(),
                director: member.director,
                server: member.server,
                address: member.dest.address,
                port: member.dest.port,
                weight: member.weight,
                ipvs_weight: dest.map(|d| d.weight),
                active_connections: dest.map_or(0, |d| d.active_connections),
                inactive_connections: dest.map_or(0, |d| d.inactive_connections),
                health,
            }
        })
        .collect();
    let _ = match format {
        Format::Json => serde_json::to_writer_pretty(&mut *out, &rows)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
        Format::Text => write_rows(&rows, out),
    };
    Ok(())
}

fn write_rows(rows: &[ServerRow], out: &mut dyn Write) -> std::io::Result<()> {
    if rows.is_empty() {
        return writeln!(out, "no real servers run");
    }
    let targets: Vec<String> = rows
        .iter()
        .map(|r| printable(&format!("{}/{}", r.director, r.server)).into_owned())
        .collect();
    let width = targets.iter().map(String::len).max().unwrap_or(0).max(6);
    writeln!(
        out,
        "{:width$}  {:<22} {:>6} {:>6} {:>7}  {:<6} OVERRIDE",
        "SERVER", "ADDRESS", "WEIGHT", "IPVS", "ACTIVE", "HEALTH"
    )?;
    for (row, target) in rows.iter().zip(&targets) {
        let address = crate::tui::address::host_port(row.address, row.port).to_string();
        let ipvs = row
            .ipvs_weight
            .map_or_else(|| "out".to_owned(), |w| w.to_string());
        let health = row.health.map_or_else(|| "-".to_owned(), |h| h.to_string());
        let held = row.hold.as_ref().map_or_else(|| "-".to_owned(), describe);
        writeln!(
            out,
            "{target:width$}  {address:<22} {:>6} {ipvs:>6} {:>7}  {health:<6} {held}",
            row.weight, row.active_connections
        )?;
    }
    Ok(())
}

/// `drain by alice at 2026-…Z (kernel upgrade)`.
fn describe(o: &Override) -> String {
    let what = match o.hold {
        Hold::Weight { weight } => format!("weight {weight}"),
        hold => hold.name().to_owned(),
    };
    let mut text = format!(
        "{what} by {} at {}",
        o.by,
        crate::store::versions::rfc3339(o.at)
    );
    if let Some(note) = &o.note {
        text.push_str(&format!(" ({note})"));
    }
    printable(&text).into_owned()
}
