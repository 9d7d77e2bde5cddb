//! The configuration language: model, parsers, printer, validator, diagnostics.
//! Pure: no I/O. Callers hand in the bytes of the three files.

pub mod diagnostic;
pub mod keywords;
pub mod merge;
pub mod model;
pub mod parse;
pub mod print;
pub mod validate;

pub use diagnostic::{ConfigFile, Diagnostic, Severity};
pub use model::Config;

/// The raw bytes of the three files; a missing file is empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sources<'a> {
    pub network: &'a [u8],
    pub flows: &'a [u8],
    pub lvs: &'a [u8],
}

/// The result of reading a configuration: the model (best effort where there
/// are errors) and every problem found, sorted by file, line and column.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    pub config: Config,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .count()
    }
}

/// Parses and validates the three files together.
pub fn check(sources: Sources<'_>) -> Checked {
    let (network, network_diagnostics) = parse::parse_network(sources.network);
    let (flows, flows_diagnostics) = parse::parse_flows(sources.flows);
    let (lvs, lvs_diagnostics) = parse::parse_lvs(sources.lvs);
    let clean = |d: &[Diagnostic]| !d.iter().any(Diagnostic::is_error);
    let parsed_cleanly = validate::ParsedCleanly {
        network: clean(&network_diagnostics),
        flows: clean(&flows_diagnostics),
        lvs: clean(&lvs_diagnostics),
    };
    let config = Config {
        network,
        flows,
        lvs,
    };
    let mut diagnostics = network_diagnostics;
    diagnostics.extend(flows_diagnostics);
    diagnostics.extend(lvs_diagnostics);
    diagnostics.extend(validate::validate(&config, parsed_cleanly));
    diagnostics.sort_by_key(|d| (d.file, d.line, d.col, d.severity));
    Checked {
        config,
        diagnostics,
    }
}
