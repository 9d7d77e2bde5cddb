//! A message to read: an error, or settings that could not be used.

use ratatui::text::Text;

use super::{Outcome, SHOWING_KEYS, View, dialog_footer, scroll_or_close};
use crate::tui::keymap::{DialogCommand, Keymap};
use crate::tui::theme::Styles;

/// The keys its footer shows: those of every dialog that only shows.
pub const KEYS: &[DialogCommand] = SHOWING_KEYS;

pub fn key(scroll: &mut u16, command: Option<DialogCommand>) -> Outcome {
    scroll_or_close(scroll, command)
}

pub fn view<'a>(
    title: &str,
    text: &str,
    scroll: u16,
    keymap: &'a Keymap,
    styles: &Styles,
) -> View<'a> {
    View {
        title: title.to_owned(),
        body: Text::raw(text.to_owned()),
        footer: dialog_footer(keymap, KEYS, styles),
        scroll,
        size: (72, 12),
        low: false,
    }
}
