//! `lbconsole convert --from keepalived|ipvsadm|ldirectord FILE [--out DIR]`:
//! another load balancer's configuration as `lvs.conf` (and `flows.conf` when
//! the source needs flows), the report of everything without an exact
//! equivalent, and what `check` says of the result.

use std::io::Write;
use std::path::Path;

use crate::convert::{self, DiskFiles, NoteKind, Options, Outcome, Source};
use crate::store::atomic::{self, Scratch};

/// What became of a conversion, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Converted {
    /// The files pass `check`.
    Clean,
    /// The files were written (or printed), but `check` finds errors.
    CheckFails,
}

/// Converts `file`; writes the files into the new directory `out_dir`, or
/// prints them on `out` after a `==> NAME <==` line each. The report and the
/// check go to `err`.
pub fn convert(
    source: Source,
    file: &Path,
    out_dir: Option<&Path>,
    options: &Options,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Converted, String> {
    let conversion = convert::convert(source, file, &DiskFiles, options)
        .map_err(|error| format!("cannot read {}: {error}", file.display()))?;
    let outcome = conversion.outcome(source, &file.display().to_string());
    let report = report_text(&outcome);
    let mut files: Vec<(&str, &[u8])> = vec![("lvs.conf", outcome.lvs.as_bytes())];
    if let Some(flows) = &outcome.flows {
        files.push(("flows.conf", flows.as_bytes()));
    }
    if let Some(vrrp) = &outcome.vrrp {
        files.push(("vrrp.conf", vrrp.as_bytes()));
    }
    match out_dir {
        Some(dir) => {
            files.push(("report.txt", report.as_bytes()));
            // A new directory, whole or not at all: nothing of the
            // administrator's is ever overwritten.
            atomic::create_dir_with(dir, &files, Scratch::Unrecorded).map_err(|error| {
                if error.kind() == std::io::ErrorKind::AlreadyExists {
                    format!(
                        "{} already exists; convert writes a new directory, so that nothing is overwritten",
                        dir.display()
                    )
                } else {
                    format!("cannot write {}: {error}", dir.display())
                }
            })?;
        }
        None => {
            for (name, text) in &files {
                let _ = writeln!(out, "==> {name} <==");
                let _ = out.write_all(text);
            }
        }
    }
    let _ = err.write_all(report.as_bytes());
    let _ = writeln!(err, "{}", summary(&conversion, &outcome));
    if let Some(dir) = out_dir {
        let names: Vec<&str> = files.iter().map(|(name, _)| *name).collect();
        let network = if outcome.vrrp.is_some() {
            "the saved network.conf stays, with vrrp.conf's lines added to its interfaces"
        } else {
            "the saved network.conf stays"
        };
        let _ = writeln!(
            err,
            "wrote {} in {}; `lbconsole import {}` saves them as a new version ({network})",
            names.join(", "),
            dir.display(),
            dir.display()
        );
    }
    Ok(if outcome.has_errors {
        Converted::CheckFails
    } else {
        Converted::Clean
    })
}

/// The report, then each diagnostic of the check after `check: `.
pub fn report_text(outcome: &Outcome) -> String {
    let mut text = String::new();
    for line in &outcome.report {
        text.push_str(line);
        text.push('\n');
    }
    for line in &outcome.check {
        text.push_str("check: ");
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// `converted 3 directors and 1 flow; 2 approximated, 1 dropped; check: valid`.
fn summary(conversion: &convert::Conversion, outcome: &Outcome) -> String {
    let counts: Vec<String> = [
        NoteKind::Approximated,
        NoteKind::Dropped,
        NoteKind::Unknown,
        NoteKind::ToDo,
        NoteKind::Error,
    ]
    .into_iter()
    .filter_map(|kind| {
        let count = conversion.report.iter().filter(|n| n.kind == kind).count();
        (count > 0).then(|| format!("{count} {}", kind.word()))
    })
    .collect();
    let mut line = format!(
        "converted {} and {}",
        crate::store::plural(conversion.directors.len(), "director"),
        crate::store::plural(conversion.flows.len(), "flow")
    );
    if !counts.is_empty() {
        line.push_str("; ");
        line.push_str(&counts.join(", "));
    }
    line.push_str(if outcome.has_errors {
        "; check: the result has errors (above)"
    } else {
        "; check: valid"
    });
    line
}
