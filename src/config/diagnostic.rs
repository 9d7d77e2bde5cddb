//! Problems found in the configuration, each pinned to a file, line and column.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::model::types::Loc;

/// The three configuration files, one per tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ConfigFile {
    #[serde(rename = "network.conf")]
    Network,
    #[serde(rename = "flows.conf")]
    Flows,
    #[serde(rename = "lvs.conf")]
    Lvs,
}

impl ConfigFile {
    pub const ALL: [Self; 3] = [Self::Network, Self::Flows, Self::Lvs];

    pub fn file_name(self) -> &'static str {
        match self {
            Self::Network => "network.conf",
            Self::Flows => "flows.conf",
            Self::Lvs => "lvs.conf",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: ConfigFile,
    pub line: u32,
    #[serde(rename = "column")]
    pub col: u32,
    pub severity: Severity,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The one-line form with the file shown under `dir`, as `lbconsole check` prints it.
    pub fn display_in<'a>(&'a self, dir: &'a Path) -> impl fmt::Display + 'a {
        DisplayIn {
            diagnostic: self,
            dir,
        }
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, file: &dyn fmt::Display) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{file}:{}:{}: {severity}: {}",
            self.line, self.col, self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, &self.file.file_name())
    }
}

struct DisplayIn<'a> {
    diagnostic: &'a Diagnostic,
    dir: &'a Path,
}

impl fmt::Display for DisplayIn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.dir.join(self.diagnostic.file.file_name());
        self.diagnostic.write(f, &path.display())
    }
}

/// Collects the diagnostics of one file.
#[derive(Debug)]
pub struct Sink {
    file: ConfigFile,
    pub diagnostics: Vec<Diagnostic>,
}

impl Sink {
    pub fn new(file: ConfigFile) -> Self {
        Self {
            file,
            diagnostics: Vec::new(),
        }
    }

    pub fn error(&mut self, loc: Loc, message: impl Into<String>) {
        self.push(loc, Severity::Error, message.into(), None);
    }

    pub fn warning(&mut self, loc: Loc, message: impl Into<String>) {
        self.push(loc, Severity::Warning, message.into(), None);
    }

    pub fn error_hint(&mut self, loc: Loc, message: impl Into<String>, hint: Option<String>) {
        self.push(loc, Severity::Error, message.into(), hint);
    }

    pub fn warning_hint(&mut self, loc: Loc, message: impl Into<String>, hint: Option<String>) {
        self.push(loc, Severity::Warning, message.into(), hint);
    }

    pub fn report(&mut self, problem: Problem) {
        self.push(problem.loc, Severity::Error, problem.message, problem.hint);
    }

    fn push(&mut self, loc: Loc, severity: Severity, message: String, hint: Option<String>) {
        self.diagnostics.push(Diagnostic {
            file: self.file,
            line: loc.line,
            col: loc.col,
            severity,
            message,
            hint,
        });
    }
}

/// An error that ends the statement it was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub loc: Loc,
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    pub fn new(loc: Loc, message: impl Into<String>) -> Self {
        Self {
            loc,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
}

/// "did you mean `x`?" for the candidate closest to `word`, when one is close enough.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let word = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&word, c), c))
        .filter(|&(distance, c)| distance <= limit || (word.len() >= 3 && c.starts_with(&word)))
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_keyword() {
        assert_eq!(
            did_you_mean("leastcon", ["roundrobin", "leastconn", "source"]),
            Some("did you mean `leastconn`?".to_owned())
        );
        assert_eq!(did_you_mean("zzzz", ["roundrobin", "leastconn"]), None);
        assert_eq!(
            did_you_mean("Permit", ["permit", "deny"]),
            Some("did you mean `permit`?".to_owned())
        );
    }
}
