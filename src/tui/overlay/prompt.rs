//! A one-line prompt: a search, a file to export to or import, a number.

use ratatui::crossterm::event::KeyEvent;
use ratatui::text::{Line, Span, Text};

use super::{Outcome, View, prompt_footer, typed};
use crate::plan::overrides::Hold;
use crate::store::settings::CONFIRM_TIMEOUTS;
use crate::tui::keymap::{Keymap, PromptCommand};
use crate::tui::theme::Styles;

/// What a one-line prompt asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// A regular expression to find in the file.
    Search,
    /// Where to export the saved configuration.
    Export,
    /// The archive to import.
    Import,
    /// Seconds an Apply waits for Confirm.
    ConfirmTimeout,
    /// Text the LB Layer4 pane keeps the servers of (`!text`: those without).
    Filter,
    /// A temporary weight for the pane's servers.
    Weight,
    /// The note of a drain, disable, enable (`None`) or weight; may be empty.
    Note(Option<Hold>),
}

/// The keys its footer shows.
pub const KEYS: &[PromptCommand] = &[
    PromptCommand::Accept,
    PromptCommand::Cancel,
    PromptCommand::Clear,
];

pub fn key(input: &mut String, command: Option<PromptCommand>, event: KeyEvent) -> Outcome {
    match command {
        Some(PromptCommand::Accept) => return Outcome::Answer,
        Some(PromptCommand::Cancel) => return Outcome::Close,
        Some(PromptCommand::DeleteBack) => {
            input.pop();
        }
        // Readline's kill-line: a fresh start instead of the offered text.
        Some(PromptCommand::Clear) => input.clear(),
        Some(PromptCommand::Next | PromptCommand::Prev) => {}
        None => input.extend(typed(event)),
    }
    Outcome::Stay
}

pub fn view<'a>(prompt: Prompt, input: &str, keymap: &'a Keymap, styles: &Styles) -> View<'a> {
    let key = |text: &str| Span::styled(text.to_owned(), styles.key);
    View {
        title: match prompt {
            Prompt::Search => "Search (regular expression)".to_owned(),
            Prompt::Export => "Export the saved configuration to".to_owned(),
            Prompt::Import => "Import the configuration of (checked first)".to_owned(),
            Prompt::ConfirmTimeout => format!(
                "Seconds an Apply waits for Confirm ({} to {})",
                CONFIRM_TIMEOUTS.start(),
                CONFIRM_TIMEOUTS.end()
            ),
            Prompt::Filter => {
                "Filter: director, server, address, state (!text: without)".to_owned()
            }
            Prompt::Weight => "Weight of the servers (while they are up)".to_owned(),
            Prompt::Note(hold) => format!(
                "{}: a note saying why (may be empty)",
                match hold {
                    Some(Hold::Drain { .. }) => "Drain".to_owned(),
                    Some(Hold::Disable) => "Disable".to_owned(),
                    Some(Hold::Weight { weight }) => format!("Weight {weight}"),
                    None => "Enable".to_owned(),
                }
            ),
        },
        body: Text::from(Line::from(vec![
            key(if matches!(prompt, Prompt::Search | Prompt::Filter) {
                "/"
            } else {
                ">"
            }),
            Span::raw(input.to_owned()),
        ])),
        footer: prompt_footer(keymap, KEYS, styles),
        scroll: 0,
        size: (64, 4),
        low: matches!(prompt, Prompt::Search | Prompt::Filter),
    }
}
