//! The diff of a save, waiting for yes.

use ratatui::text::{Line, Text};

use super::diff::diff_text;
use super::{ASKING_KEYS, Outcome, View, ask_or_scroll, dialog_footer};
use crate::tui::keymap::{DialogCommand, Keymap};
use crate::tui::theme::Styles;

/// The keys its footer shows: those of every question over text to scroll.
pub const KEYS: &[DialogCommand] = ASKING_KEYS;

pub fn key(scroll: &mut u16, command: Option<DialogCommand>) -> Outcome {
    ask_or_scroll(scroll, command)
}

pub fn view<'a>(
    diff: &str,
    errors: usize,
    scroll: u16,
    keymap: &'a Keymap,
    styles: &Styles,
) -> View<'a> {
    let mut lines: Vec<Line> = Vec::new();
    if errors > 0 {
        lines.push(Line::styled(
            format!("The configuration has {errors} error(s); it is saved as it is."),
            styles.error,
        ));
    }
    lines.extend(diff_text(diff, styles).lines);
    View {
        title: "Save these changes?".to_owned(),
        body: Text::from(lines),
        footer: dialog_footer(keymap, KEYS, styles),
        scroll,
        size: (100, 30),
        low: false,
    }
}
