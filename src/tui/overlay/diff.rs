//! A diff between versions of the store, or a version and the edited files.

use ratatui::text::{Line, Text};

use super::{Outcome, SHOWING_KEYS, View, dialog_footer, scroll_or_close};
use crate::tui::engine::Diff;
use crate::tui::keymap::{DialogCommand, Keymap};
use crate::tui::theme::Styles;

/// The keys its footer shows: those of every dialog that only shows.
pub const KEYS: &[DialogCommand] = SHOWING_KEYS;

pub fn key(scroll: &mut u16, command: Option<DialogCommand>) -> Outcome {
    scroll_or_close(scroll, command)
}

pub fn view<'a>(diff: &Diff, scroll: u16, keymap: &'a Keymap, styles: &Styles) -> View<'a> {
    View {
        title: diff.title.clone(),
        body: if diff.text.is_empty() {
            Text::raw("no differences")
        } else {
            diff_text(&diff.text, styles)
        },
        footer: dialog_footer(keymap, KEYS, styles),
        scroll,
        size: (100, 30),
        low: false,
    }
}

/// A unified diff, its headers, additions and removals set apart.
pub fn diff_text<'a>(diff: &str, styles: &Styles) -> Text<'a> {
    Text::from(
        diff.lines()
            .map(|line| {
                let style = if line.starts_with("+++") || line.starts_with("---") {
                    styles.title
                } else if line.starts_with('+') {
                    styles.diff_added
                } else if line.starts_with('-') {
                    styles.diff_removed
                } else if line.starts_with("@@") {
                    styles.comment
                } else {
                    styles.text
                };
                Line::styled(line.to_owned(), style)
            })
            .collect::<Vec<_>>(),
    )
}
