//! A change refused because the saved configuration changed since it was
//! read: reload, or go on editing.

use ratatui::text::Text;

use super::{Outcome, View, dialog_footer};
use crate::tui::keymap::{DialogCommand, Keymap};
use crate::tui::theme::Styles;

/// The keys its footer shows.
pub const KEYS: &[DialogCommand] = &[DialogCommand::Reload, DialogCommand::Cancel];

pub fn key(command: Option<DialogCommand>) -> Outcome {
    match command {
        Some(DialogCommand::Reload) => Outcome::Answer,
        Some(DialogCommand::Cancel) => Outcome::Close,
        _ => Outcome::Stay,
    }
}

pub fn view<'a>(text: &str, keymap: &'a Keymap, styles: &Styles) -> View<'a> {
    View {
        title: "Refused: the saved configuration changed".to_owned(),
        body: Text::styled(text.to_owned(), styles.warning),
        footer: dialog_footer(keymap, KEYS, styles),
        scroll: 0,
        size: (60, 8),
        low: false,
    }
}
