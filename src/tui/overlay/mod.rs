//! Dialogs: a window over the tabs that takes the keys until it closes. Each
//! dialog is a module with its keys (`key`, which says what became of the
//! dialog) and its look (`view`, which only reads); this module holds the
//! enum that joins them and draws every dialog's frame the same way.
//! Adding a dialog is a module here and a variant in [`Overlay`].

pub mod ask;
pub mod diff;
pub mod help;
pub mod message;
pub mod palette;
pub mod plan;
pub mod prompt;
pub mod save;
pub mod stale;

use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Text};
use ratatui::widgets::{Borders, Clear, Paragraph, Wrap};

pub use ask::Question;
pub use prompt::Prompt;

use super::app::App;
use super::engine::{Diff, PlanPreview};
use super::keymap::{Command, DialogCommand, Keymap, PromptCommand};
use super::theme::Styles;
use super::ui::block;

/// A window over the tabs that takes the keys until it closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    Help {
        scroll: u16,
    },
    Palette {
        query: String,
        selected: usize,
    },
    Prompt {
        prompt: Prompt,
        input: String,
    },
    /// The plan of an apply, waiting for yes.
    Plan {
        preview: PlanPreview,
        scroll: u16,
    },
    /// The text diff of a save, waiting for yes.
    SaveDiff {
        diff: String,
        errors: usize,
        scroll: u16,
    },
    Ask {
        question: Question,
        text: String,
    },
    /// A change refused because the saved configuration changed: reload or go on editing.
    Stale {
        text: String,
    },
    /// A diff between versions of the store, or a version and the buffers.
    Diff {
        diff: Diff,
        scroll: u16,
    },
    Message {
        title: String,
        text: String,
        scroll: u16,
    },
}

/// What a key made of a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It stays open, changed or not.
    Stay,
    /// It closes and nothing is done.
    Close,
    /// It closes with its answer (yes, reload, the prompt's text), which the
    /// app carries out.
    Answer,
    /// The palette closes and runs this.
    Run(Command),
}

/// What a dialog shows. Every dialog is drawn the same way: a bordered box
/// with the title, the body scrolled, and a footer of keys.
pub struct View<'a> {
    pub title: String,
    pub body: Text<'a>,
    pub footer: Line<'a>,
    pub scroll: u16,
    /// At most this wide and high.
    pub size: (u16, u16),
    /// Near the bottom of the screen instead of its middle, to leave the
    /// text in view (a search).
    pub low: bool,
}

impl Overlay {
    /// Hands `event` to the dialog.
    pub fn key(&mut self, event: KeyEvent, keymap: &Keymap) -> Outcome {
        let dialog = || dialog_command(event);
        match self {
            Self::Help { scroll } => help::key(scroll, dialog()),
            Self::Palette { query, selected } => {
                palette::key(query, selected, prompt_command(event), event, keymap)
            }
            Self::Prompt { input, .. } => prompt::key(input, prompt_command(event), event),
            Self::Plan { scroll, .. } => plan::key(scroll, dialog()),
            Self::SaveDiff { scroll, .. } => save::key(scroll, dialog()),
            Self::Ask { .. } => ask::key(dialog()),
            Self::Stale { .. } => stale::key(dialog()),
            Self::Diff { scroll, .. } => diff::key(scroll, dialog()),
            Self::Message { scroll, .. } => message::key(scroll, dialog()),
        }
    }

    fn view<'a>(&'a self, keymap: &'a Keymap, styles: &Styles) -> View<'a> {
        match self {
            Self::Help { scroll } => help::view(*scroll, keymap, styles),
            Self::Palette { query, selected } => palette::view(query, *selected, keymap, styles),
            Self::Prompt { prompt, input } => prompt::view(*prompt, input, styles),
            Self::Plan { preview, scroll } => plan::view(preview, *scroll, styles),
            Self::SaveDiff {
                diff,
                errors,
                scroll,
            } => save::view(diff, *errors, *scroll, styles),
            Self::Ask { question, text } => ask::view(question, text, styles),
            Self::Stale { text } => stale::view(text, styles),
            Self::Diff { diff, scroll } => diff::view(diff, *scroll, styles),
            Self::Message {
                title,
                text,
                scroll,
            } => message::view(title, text, *scroll, styles),
        }
    }
}

/// What a key does in a dialog.
fn dialog_command(event: KeyEvent) -> Option<DialogCommand> {
    let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
    Some(match event.code {
        KeyCode::Char('y' | 'Y') | KeyCode::Enter => DialogCommand::Yes,
        KeyCode::Esc => DialogCommand::Cancel,
        KeyCode::Char('c') if ctrl => DialogCommand::Cancel,
        KeyCode::Char('n') => DialogCommand::No,
        KeyCode::Down | KeyCode::Char('j') => DialogCommand::ScrollDown,
        KeyCode::Up | KeyCode::Char('k') => DialogCommand::ScrollUp,
        KeyCode::PageDown | KeyCode::Char(' ') => DialogCommand::PageDown,
        KeyCode::PageUp => DialogCommand::PageUp,
        KeyCode::Char('r') => DialogCommand::Reload,
        _ => return None,
    })
}

/// What a key does in a prompt or the palette.
fn prompt_command(event: KeyEvent) -> Option<PromptCommand> {
    let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
    Some(match event.code {
        KeyCode::Enter => PromptCommand::Accept,
        KeyCode::Esc => PromptCommand::Cancel,
        KeyCode::Char('c') if ctrl => PromptCommand::Cancel,
        KeyCode::Char('u') if ctrl => PromptCommand::Clear,
        KeyCode::Backspace => PromptCommand::DeleteBack,
        KeyCode::Down | KeyCode::Tab => PromptCommand::Next,
        KeyCode::Up | KeyCode::BackTab => PromptCommand::Prev,
        _ => return None,
    })
}

/// The character a key types into a prompt, when it is text.
fn typed(event: KeyEvent) -> Option<char> {
    match event.code {
        KeyCode::Char(c) if !event.modifiers.contains(KeyModifiers::CONTROL) => Some(c),
        _ => None,
    }
}

/// `scroll` moved by a scrolling command; `None` for any other.
fn scrolled(scroll: u16, command: Option<DialogCommand>) -> Option<u16> {
    match command? {
        DialogCommand::ScrollDown => Some(scroll.saturating_add(1)),
        DialogCommand::ScrollUp => Some(scroll.saturating_sub(1)),
        DialogCommand::PageDown => Some(scroll.saturating_add(10)),
        DialogCommand::PageUp => Some(scroll.saturating_sub(10)),
        _ => None,
    }
}

/// A dialog that only shows: scrolling keys scroll it, any other closes it.
fn scroll_or_close(scroll: &mut u16, command: Option<DialogCommand>) -> Outcome {
    match scrolled(*scroll, command) {
        Some(to) => {
            *scroll = to;
            Outcome::Stay
        }
        None => Outcome::Close,
    }
}

/// A dialog that asks: yes answers, no or cancel closes, scrolling keys
/// scroll, any other key is ignored.
fn ask_or_scroll(scroll: &mut u16, command: Option<DialogCommand>) -> Outcome {
    match command {
        Some(DialogCommand::Yes) => Outcome::Answer,
        Some(DialogCommand::No | DialogCommand::Cancel) => Outcome::Close,
        _ => {
            *scroll = scrolled(*scroll, command).unwrap_or(*scroll);
            Outcome::Stay
        }
    }
}

/// Draws the app's dialog over `area`.
pub fn draw(frame: &mut Frame, area: Rect, app: &App, overlay: &Overlay) {
    let styles = &app.theme.styles;
    let view = overlay.view(&app.keymap, styles);
    let popup = if view.low {
        let rect = centered(area, view.size.0, view.size.1);
        Rect::new(
            rect.x,
            area.bottom().saturating_sub(rect.height + 2).max(area.y),
            rect.width,
            rect.height,
        )
    } else {
        centered(area, view.size.0, view.size.1)
    };
    frame.render_widget(Clear, popup);
    let outer = block(&view.title, Borders::ALL, app).style(styles.dialog);
    let inner = outer.inner(popup);
    frame.render_widget(outer, popup);
    let [body_area, footer_area] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(u16::from(inner.height >= 2)),
    ])
    .areas(inner);
    frame.render_widget(
        Paragraph::new(view.body)
            .wrap(Wrap { trim: false })
            .scroll((view.scroll, 0)),
        body_area,
    );
    frame.render_widget(Paragraph::new(view.footer), footer_area);
}

/// A box of at most `width`×`height` in the middle of `area`.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}
