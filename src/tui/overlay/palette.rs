//! `:`: every command of the keymap, found by name or description.

use ratatui::crossterm::event::KeyEvent;
use ratatui::text::{Line, Span, Text};

use super::{Outcome, View, prompt_footer, typed};
use crate::tui::keymap::{Command, Keymap, PromptCommand};
use crate::tui::theme::Styles;

/// The palette's entries for `query`: commands whose name or description
/// contains it, as (command, description, keys).
pub fn entries<'k>(keymap: &'k Keymap, query: &str) -> Vec<(Command, &'k str, String)> {
    let query = query.trim().to_lowercase();
    keymap
        .commands()
        .into_iter()
        .filter(|(command, desc, _)| {
            command.name().contains(&query) || desc.to_lowercase().contains(&query)
        })
        .collect()
}

/// The keys its footer shows.
pub const KEYS: &[PromptCommand] = &[
    PromptCommand::Accept,
    PromptCommand::Cancel,
    PromptCommand::Next,
    PromptCommand::Prev,
];

pub fn key(
    query: &mut String,
    selected: &mut usize,
    command: Option<PromptCommand>,
    event: KeyEvent,
    keymap: &Keymap,
) -> Outcome {
    match command {
        Some(PromptCommand::Accept) => {
            return entries(keymap, query)
                .get(*selected)
                .map_or(Outcome::Close, |(command, _, _)| Outcome::Run(*command));
        }
        Some(PromptCommand::Cancel) => return Outcome::Close,
        Some(PromptCommand::Next) => {
            let count = entries(keymap, query).len();
            *selected = (*selected + 1).min(count.saturating_sub(1));
        }
        Some(PromptCommand::Prev) => *selected = selected.saturating_sub(1),
        Some(PromptCommand::DeleteBack) => {
            query.pop();
            *selected = 0;
        }
        Some(PromptCommand::Clear) => {
            query.clear();
            *selected = 0;
        }
        None => {
            if let Some(c) = typed(event) {
                query.push(c);
                *selected = 0;
            }
        }
    }
    Outcome::Stay
}

pub fn view<'a>(query: &str, selected: usize, keymap: &'a Keymap, styles: &Styles) -> View<'a> {
    let key = |text: &str| Span::styled(text.to_owned(), styles.key);
    let mut lines = vec![Line::from(vec![key(":"), Span::raw(query.to_owned())])];
    for (index, (command, desc, keys)) in entries(keymap, query).iter().enumerate() {
        let style = if index == selected {
            styles.tab_active
        } else {
            styles.text
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{:<14} {desc}", command.name()), style),
            Span::styled(format!("  {keys}"), styles.comment),
        ]));
    }
    View {
        title: "Command".to_owned(),
        body: Text::from(lines),
        footer: prompt_footer(keymap, KEYS, styles),
        scroll: (selected as u16).saturating_sub(8),
        size: (76, 14),
        low: false,
    }
}
