//! Colours and borders, from TOML: the presets in `themes/` are built in, and a
//! user's `theme.toml` overrides only the entries, and the fields of entries, it sets.

use std::path::Path;
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::border;
use serde::Deserialize;

use super::toml_file::{self, FileError};

pub const PRESETS: [(&str, &str); 2] = [
    ("default", include_str!("../../themes/default.toml")),
    ("mono", include_str!("../../themes/mono.toml")),
];

/// The user's own theme in their config dir, and the folder of more.
pub const USER_FILE: &str = "theme.toml";
pub const USER_FOLDER: &str = "themes";

/// Borders drawn with `+`, `-` and `|`, for terminals without line drawing.
pub const ASCII_BORDER: border::Set = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

/// One list of style names makes the theme, its file form and the merge agree.
macro_rules! styles {
    ($($name:ident),* $(,)?) => {
        #[derive(Debug, Clone, PartialEq)]
        pub struct Styles {
            $(pub $name: Style,)*
        }

        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct StylesFile {
            $(#[serde(default)] $name: Option<StyleSpec>,)*
        }

        impl StylesFile {
            fn merge(&mut self, over: StylesFile) {
                $(self.$name = StyleSpec::merged(self.$name.take(), over.$name);)*
            }

            fn styles(&self) -> Styles {
                Styles {
                    $($name: self.$name.as_ref().map(StyleSpec::style).unwrap_or_default(),)*
                }
            }
        }
    };
}

styles!(
    text,
    border,
    title,
    tab,
    tab_active,
    keyword,
    name,
    address,
    number,
    comment,
    line_number,
    cursor,
    selection,
    search_match,
    error,
    warning,
    ok,
    status,
    dialog,
    key,
    diff_added,
    diff_removed,
);

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub styles: Styles,
    pub border: border::Set<'static>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    preset: Option<String>,
    ascii_borders: Option<bool>,
    #[serde(default)]
    styles: StylesFile,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StyleSpec {
    fg: Option<ColorName>,
    bg: Option<ColorName>,
    modifiers: Option<Vec<ModifierName>>,
}

impl StyleSpec {
    fn merged(base: Option<Self>, over: Option<Self>) -> Option<Self> {
        match (base, over) {
            (Some(base), Some(over)) => Some(Self {
                fg: over.fg.or(base.fg),
                bg: over.bg.or(base.bg),
                modifiers: over.modifiers.or(base.modifiers),
            }),
            (base, over) => over.or(base),
        }
    }

    fn style(&self) -> Style {
        let mut style = Style::default();
        if let Some(ColorName(fg)) = self.fg {
            style = style.fg(fg);
        }
        if let Some(ColorName(bg)) = self.bg {
            style = style.bg(bg);
        }
        for ModifierName(modifier) in self.modifiers.iter().flatten() {
            style = style.add_modifier(*modifier);
        }
        style
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
struct ColorName(Color);

impl TryFrom<String> for ColorName {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        let valid = name.starts_with('#') && name.len() == 7 || !name.starts_with('#');
        match Color::from_str(&name) {
            Ok(color) if valid && !matches!(color, Color::Indexed(_)) => Ok(Self(color)),
            _ => Err(format!(
                "unknown colour `{name}` (a name such as `lightblue`, `reset`, or `#rrggbb`)"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
struct ModifierName(Modifier);

impl TryFrom<String> for ModifierName {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        Ok(Self(match name.as_str() {
            "bold" => Modifier::BOLD,
            "dim" => Modifier::DIM,
            "italic" => Modifier::ITALIC,
            "underlined" => Modifier::UNDERLINED,
            "reversed" => Modifier::REVERSED,
            _ => {
                return Err(format!(
                    "unknown modifier `{name}` (bold, dim, italic, underlined or reversed)"
                ));
            }
        }))
    }
}

/// Whether the terminal must get the monochrome theme: `NO_COLOR` (no-color.org)
/// or a terminal type of a serial console.
pub fn monochrome_terminal(no_color: Option<&str>, term: Option<&str>) -> bool {
    no_color.is_some_and(|v| !v.is_empty())
        || matches!(term, Some("vt100" | "vt102" | "vt220" | "linux" | "dumb"))
}

impl Theme {
    /// A built-in preset by name.
    pub fn preset(name: &str) -> Option<Self> {
        let file = preset_file(name)?;
        Some(Self::from_file(&file))
    }

    /// The theme `name` for this terminal: a preset, or the user's file `name`
    /// in `user_dir` over its preset (`default` unless it names one); with the
    /// colours of `mono` on a monochrome terminal.
    pub fn load(user_dir: Option<&Path>, name: &str, monochrome: bool) -> Result<Self, FileError> {
        let user = match preset_file(name) {
            Some(_) => None,
            None => {
                let (path, text) =
                    toml_file::read_chosen_file(user_dir, name, &PRESETS.map(|(name, _)| name))?;
                let label = path.display().to_string();
                let file: ThemeFile = toml_file::parse(&label, &text)?;
                Some((label, text, file))
            }
        };
        let wanted = match &user {
            Some((_, _, file)) => file.preset.clone().unwrap_or_else(|| "default".to_owned()),
            None => name.to_owned(),
        };
        let mut base = match preset_file(&wanted) {
            Some(base) => base,
            None => {
                let (label, text, _) = user.as_ref().expect("only a user file names a preset");
                return Err(FileError::at_text(
                    label,
                    text,
                    &wanted,
                    format!("unknown preset `{wanted}` (default or mono)"),
                ));
            }
        };
        if let Some((_, _, over)) = user {
            base.ascii_borders = over.ascii_borders.or(base.ascii_borders);
            base.styles.merge(over.styles);
        }
        if monochrome {
            let mono = preset_file("mono").expect("mono is built in");
            base.styles.merge(mono.styles);
            base.ascii_borders = Some(true);
        }
        Ok(Self::from_file(&base))
    }

    fn from_file(file: &ThemeFile) -> Self {
        Self {
            styles: file.styles.styles(),
            border: if file.ascii_borders.unwrap_or(false) {
                ASCII_BORDER
            } else {
                border::PLAIN
            },
        }
    }
}

fn preset_file(name: &str) -> Option<ThemeFile> {
    let (label, text) = PRESETS.iter().find(|(preset, _)| *preset == name)?;
    let file = toml_file::parse(&format!("themes/{label}.toml"), text);
    Some(file.expect("the built-in themes parse (tested)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_theme(text: &str) -> Result<Theme, FileError> {
        let dir = tempdir();
        std::fs::write(dir.join("theme.toml"), text).unwrap();
        let theme = Theme::load(Some(&dir), USER_FILE, false);
        std::fs::remove_dir_all(&dir).unwrap();
        theme.map_err(|mut e| {
            e.file = "theme.toml".to_owned();
            e
        })
    }

    fn tempdir() -> std::path::PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "lbconsole-theme-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn every_preset_parses() {
        for (name, _) in PRESETS {
            assert!(Theme::preset(name).is_some(), "{name}");
        }
    }

    #[test]
    fn a_user_file_overrides_only_the_fields_it_sets() {
        let theme = user_theme("[styles]\nkeyword = { fg = \"red\" }\n").unwrap();
        let default = Theme::preset("default").unwrap();
        assert_eq!(theme.styles.keyword.fg, Some(Color::Red));
        assert_eq!(
            theme.styles.keyword.add_modifier,
            default.styles.keyword.add_modifier
        );
        assert_eq!(theme.styles.comment, default.styles.comment);
        assert_eq!(theme.border, border::PLAIN);
    }

    #[test]
    fn a_user_file_can_start_from_another_preset() {
        let theme = user_theme("preset = \"mono\"\n").unwrap();
        assert_eq!(theme, Theme::preset("mono").unwrap());
    }

    #[test]
    fn monochrome_terminals_get_no_colour_and_ascii_borders() {
        let theme = Theme::load(None, "default", true).unwrap();
        assert_eq!(theme.border, ASCII_BORDER);
        let styles = format!("{:?}", theme.styles);
        assert!(!styles.contains("fg: Some"), "{styles}");
        assert!(!styles.contains("bg: Some"), "{styles}");
        assert!(monochrome_terminal(Some("1"), Some("xterm")));
        assert!(monochrome_terminal(None, Some("vt100")));
        assert!(monochrome_terminal(None, Some("linux")));
        assert!(!monochrome_terminal(Some(""), Some("xterm-256color")));
    }

    #[test]
    fn bad_theme_files_name_the_line() {
        let cases = [
            (
                "[styles]\nkeyword = { fg = \"purpel\" }\n",
                "theme.toml:2:18: unknown colour `purpel` (a name such as `lightblue`, `reset`, or `#rrggbb`)",
            ),
            (
                "[styles]\n\nkeywords = {}\n",
                "theme.toml:3:1: unknown field `keywords`, expected one of",
            ),
            (
                "[styles]\nname = { modifiers = [\"blink\"] }\n",
                "theme.toml:2:22: unknown modifier `blink` (bold, dim, italic, underlined or reversed)",
            ),
            (
                "preset = \"solarized\"\n",
                "theme.toml:1:11: unknown preset `solarized` (default or mono)",
            ),
            ("ascii_borders = yes\n", "theme.toml:1:17: "),
        ];
        for (text, expected) in cases {
            let error = user_theme(text).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{error}\nexpected {expected}");
        }
    }
}
