//! What the subcommands print. `main.rs` parses arguments and calls these.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::config::{self, Diagnostic, Severity};
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
