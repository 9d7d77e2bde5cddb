//! A yes-or-no question before something that cannot be undone.

use ratatui::text::Text;

use super::{Outcome, View, dialog_footer};
use crate::tui::keymap::{DialogCommand, Keymap};
use crate::tui::theme::Styles;

/// What a yes does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    Quit,
    Reload,
    /// Restore this version of the store.
    Restore(u64),
}

/// The keys its footer shows.
pub const KEYS: &[DialogCommand] = &[DialogCommand::Yes, DialogCommand::No];

pub fn key(command: Option<DialogCommand>) -> Outcome {
    match command {
        Some(DialogCommand::Yes) => Outcome::Answer,
        Some(DialogCommand::No | DialogCommand::Cancel) => Outcome::Close,
        _ => Outcome::Stay,
    }
}

pub fn view<'a>(question: &Question, text: &str, keymap: &'a Keymap, styles: &Styles) -> View<'a> {
    View {
        title: match question {
            Question::Quit => "Quit?".to_owned(),
            Question::Reload => "Reload?".to_owned(),
            Question::Restore(version) => format!("Restore version {version}?"),
        },
        body: Text::raw(text.to_owned()),
        footer: dialog_footer(keymap, KEYS, styles),
        scroll: 0,
        size: (64, 9),
        low: false,
    }
}
