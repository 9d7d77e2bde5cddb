//! Reading the console's own TOML files (keymaps, themes) with errors that name
//! the file, line and column, as `lbconsole check` does for the configuration.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A keymap or theme file that cannot be used, and where it goes wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: String,
    /// 1-based; 0 when the problem is the file as a whole (it cannot be read).
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.col, self.message
            )
        }
    }
}

impl std::error::Error for FileError {}

impl FileError {
    /// A problem found after parsing, pinned to where `needle` first appears in
    /// `text` (the offending value), or to the file when it does not.
    pub fn at_text(file: &str, text: &str, needle: &str, message: String) -> Self {
        let (line, col) = text
            .find(needle)
            .map_or((0, 0), |offset| line_and_column(text, offset));
        Self {
            file: file.to_owned(),
            line,
            col,
            message,
        }
    }
}

/// Parses `text`, the contents of `file` (a name for messages).
pub fn parse<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, FileError> {
    toml::from_str(text).map_err(|error| {
        let (line, col) = error
            .span()
            .map_or((0, 0), |span| line_and_column(text, span.start));
        FileError {
            file: file.to_owned(),
            line,
            col,
            message: error.message().trim_end().to_owned(),
        }
    })
}

/// The user's own file `name` in the config directory, if there is one.
pub fn read_user_file(
    dir: Option<&Path>,
    name: &str,
) -> Result<Option<(PathBuf, String)>, FileError> {
    let Some(dir) = dir else { return Ok(None) };
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some((path, text))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(FileError {
            file: path.display().to_string(),
            line: 0,
            col: 0,
            message: format!("cannot read: {error}"),
        }),
    }
}

/// The keymap or theme a setting (`keymap` or `theme` of `lbconsole.toml`)
/// chooses: a preset, or a file in the user's config dir. Without one, the
/// user's `own_file` (`keymap.toml`) when there is one, else the `default` preset.
pub fn chosen(setting: Option<&str>, user_dir: Option<&Path>, own_file: &str) -> String {
    match setting {
        Some(name) => name.to_owned(),
        None if user_dir.is_some_and(|dir| dir.join(own_file).is_file()) => own_file.to_owned(),
        None => "default".to_owned(),
    }
}

/// What one can choose from: the presets, then the user's `own_file` and the
/// `.toml` files of the user's `folder` (`keymaps/`), as a setting names them.
pub fn choices(
    presets: &[&str],
    user_dir: Option<&Path>,
    own_file: &str,
    folder: &str,
) -> Vec<String> {
    let mut names: Vec<String> = presets.iter().map(|&name| name.to_owned()).collect();
    let Some(dir) = user_dir else { return names };
    if dir.join(own_file).is_file() {
        names.push(own_file.to_owned());
    }
    let mut files: Vec<String> = std::fs::read_dir(dir.join(folder))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.ends_with(".toml"))
        .map(|name| format!("{folder}/{name}"))
        .collect();
    files.sort();
    names.extend(files);
    names
}

/// The user's file `name`, which a setting chose; an error when it is missing.
pub fn read_chosen_file(
    dir: Option<&Path>,
    name: &str,
    presets: &[&str],
) -> Result<(PathBuf, String), FileError> {
    read_user_file(dir, name)?.ok_or_else(|| FileError {
        file: dir.map_or_else(
            || name.to_owned(),
            |dir| dir.join(name).display().to_string(),
        ),
        line: 0,
        col: 0,
        message: format!(
            "no such file, and `{name}` is not a preset ({})",
            presets.join(", ")
        ),
    })
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters_from_one() {
        assert_eq!(line_and_column("a = 1\nbé = x", 10), (2, 4));
        assert_eq!(line_and_column("abc", 0), (1, 1));
        assert_eq!(line_and_column("abc", 99), (1, 4));
    }
}
