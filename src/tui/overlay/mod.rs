//! Dialogs: a window over the tabs that takes the keys until it closes. Each
//! dialog is a module with its state's types, `key` (a command of the keymap's
//! `dialog` or `prompt` section in, what became of the dialog out), `view`
//! (which only reads) and `KEYS` (what its footer shows, with the keymap's
//! keys and descs). This module holds the enum that joins them and draws every
//! dialog's frame the same way. Adding a dialog is a module here, a variant in
//! [`Overlay`] with its arm in `key` and `view`, and, if it answers, an arm in
//! `App::answer`.

pub mod ask;
pub mod diff;
pub mod help;
pub mod import;
pub mod message;
pub mod palette;
pub mod peer;
pub mod plan;
pub mod prompt;
pub mod save;
pub mod stale;

use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Borders, Clear, Paragraph, Wrap};

pub use ask::Question;
pub use prompt::Prompt;

use super::app::App;
use super::engine::{Diff, ImportPreview, PeerComparison, PlanPreview};
use super::keymap::{Command, DialogCommand, Key, Keymap, PromptCommand};
use super::theme::Styles;
use super::ui::block;
use crate::config::ConfigFile;

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
    /// What an import would change, waiting for yes.
    Import {
        preview: ImportPreview,
        /// The files whose unsaved edits the import throws away, named.
        discarded: String,
        scroll: u16,
    },
    /// The diff of a configuration sync to the peer, waiting for yes.
    PeerSync {
        comparison: PeerComparison,
        /// Files with unsaved edits, which are not sent.
        unsent: Vec<ConfigFile>,
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
        let key = Key::from_event(event);
        let dialog = || keymap.dialog_command(key);
        match self {
            Self::Help { scroll } => help::key(scroll, dialog()),
            Self::Palette { query, selected } => {
                palette::key(query, selected, keymap.prompt_command(key), event, keymap)
            }
            Self::Prompt { input, .. } => prompt::key(input, keymap.prompt_command(key), event),
            Self::Plan { scroll, .. } => plan::key(scroll, dialog()),
            Self::SaveDiff { scroll, .. } => save::key(scroll, dialog()),
            Self::Import { scroll, .. } => import::key(scroll, dialog()),
            Self::PeerSync { scroll, .. } => peer::key(scroll, dialog()),
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
            Self::Prompt { prompt, input } => prompt::view(*prompt, input, keymap, styles),
            Self::Plan { preview, scroll } => plan::view(preview, *scroll, keymap, styles),
            Self::SaveDiff {
                diff,
                errors,
                scroll,
            } => save::view(diff, *errors, *scroll, keymap, styles),
            Self::Import {
                preview,
                discarded,
                scroll,
            } => import::view(preview, discarded, *scroll, keymap, styles),
            Self::PeerSync {
                comparison,
                unsent,
                scroll,
            } => peer::view(comparison, unsent, *scroll, keymap, styles),
            Self::Ask { question, text } => ask::view(question, text, keymap, styles),
            Self::Stale { text } => stale::view(text, keymap, styles),
            Self::Diff { diff, scroll } => diff::view(diff, *scroll, keymap, styles),
            Self::Message {
                title,
                text,
                scroll,
            } => message::view(title, text, *scroll, keymap, styles),
        }
    }
}

/// A footer of the keys `commands` take, from the keymap: `y yes  n no`.
fn footer<'a, C: Copy>(
    commands: &[C],
    hint: impl Fn(C) -> Option<(String, &'a str)>,
    styles: &Styles,
) -> Line<'a> {
    let mut spans = Vec::new();
    for (key, desc) in commands.iter().filter_map(|&command| hint(command)) {
        if !spans.is_empty() {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(key, styles.key));
        spans.push(Span::raw(format!(" {desc}")));
    }
    Line::from(spans)
}

/// The footer of a dialog that asks or shows.
fn dialog_footer<'a>(keymap: &'a Keymap, commands: &[DialogCommand], styles: &Styles) -> Line<'a> {
    footer(commands, |command| keymap.dialog_hint(command), styles)
}

/// The footer of a prompt or the palette.
fn prompt_footer<'a>(keymap: &'a Keymap, commands: &[PromptCommand], styles: &Styles) -> Line<'a> {
    footer(commands, |command| keymap.prompt_hint(command), styles)
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

/// The footer of a dialog that only shows (a diff, the help, a message).
const SHOWING_KEYS: &[DialogCommand] = &[
    DialogCommand::Cancel,
    DialogCommand::ScrollDown,
    DialogCommand::ScrollUp,
];

/// The footer of a question over text to scroll (a plan, a save's diff).
const ASKING_KEYS: &[DialogCommand] = &[
    DialogCommand::Yes,
    DialogCommand::No,
    DialogCommand::ScrollDown,
    DialogCommand::ScrollUp,
];

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

#[cfg(test)]
mod tests {
    use super::*;

    fn press(overlay: &mut Overlay, keymap: &Keymap, code: KeyCode) -> Outcome {
        overlay.key(KeyEvent::new(code, KeyModifiers::NONE), keymap)
    }

    fn ask() -> Overlay {
        Overlay::Ask {
            question: Question::Quit,
            text: "Quit?".to_owned(),
        }
    }

    #[test]
    fn a_dialog_takes_the_keys_the_keymap_gives_it() {
        let mut keymap = Keymap::preset("default").unwrap();
        let yes = keymap
            .dialog
            .iter_mut()
            .find(|b| b.run == DialogCommand::Yes)
            .unwrap();
        yes.on = vec!["o".parse().unwrap()];
        assert_eq!(
            press(&mut ask(), &keymap, KeyCode::Char('y')),
            Outcome::Stay
        );
        assert_eq!(
            press(&mut ask(), &keymap, KeyCode::Char('o')),
            Outcome::Answer
        );
        assert_eq!(press(&mut ask(), &keymap, KeyCode::Esc), Outcome::Close);
        let theme = crate::tui::theme::Theme::load(None, "mono", true).unwrap();
        let footer = dialog_footer(&keymap, ask::KEYS, &theme.styles);
        assert_eq!(footer.to_string(), "o yes  n no");
    }

    #[test]
    fn a_showing_dialog_scrolls_on_its_keys_and_closes_on_any_other() {
        let keymap = Keymap::preset("vim").unwrap();
        let mut help = Overlay::Help { scroll: 0 };
        assert_eq!(press(&mut help, &keymap, KeyCode::Char('j')), Outcome::Stay);
        assert_eq!(
            overlay_key_ctrl(&mut help, &keymap, 'd'),
            Outcome::Stay,
            "vim pages down with ctrl-d"
        );
        assert_eq!(help, Overlay::Help { scroll: 11 });
        assert_eq!(
            press(&mut help, &keymap, KeyCode::Char('x')),
            Outcome::Close
        );
    }

    fn overlay_key_ctrl(overlay: &mut Overlay, keymap: &Keymap, c: char) -> Outcome {
        overlay.key(
            KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL),
            keymap,
        )
    }

    #[test]
    fn keys_a_prompt_does_not_bind_are_text() {
        let keymap = Keymap::preset("default").unwrap();
        let mut prompt = Overlay::Prompt {
            prompt: Prompt::Search,
            input: String::new(),
        };
        for c in ['j', 'y', 'q'] {
            assert_eq!(press(&mut prompt, &keymap, KeyCode::Char(c)), Outcome::Stay);
        }
        press(&mut prompt, &keymap, KeyCode::Backspace);
        assert_eq!(
            prompt,
            Overlay::Prompt {
                prompt: Prompt::Search,
                input: "jy".to_owned()
            }
        );
        assert_eq!(overlay_key_ctrl(&mut prompt, &keymap, 'u'), Outcome::Stay);
        assert_eq!(press(&mut prompt, &keymap, KeyCode::Enter), Outcome::Answer);
        let Overlay::Prompt { input, .. } = prompt else {
            unreachable!()
        };
        assert_eq!(input, "");
    }

    #[test]
    fn the_palette_moves_with_its_keys_and_clears_like_a_prompt() {
        let keymap = Keymap::preset("default").unwrap();
        let mut palette = Overlay::Palette {
            query: String::new(),
            selected: 0,
        };
        for c in "tab".chars() {
            press(&mut palette, &keymap, KeyCode::Char(c));
        }
        press(&mut palette, &keymap, KeyCode::Tab);
        press(&mut palette, &keymap, KeyCode::Down);
        press(&mut palette, &keymap, KeyCode::BackTab);
        assert_eq!(
            palette,
            Overlay::Palette {
                query: "tab".to_owned(),
                selected: 1
            }
        );
        assert_eq!(overlay_key_ctrl(&mut palette, &keymap, 'u'), Outcome::Stay);
        assert_eq!(
            palette,
            Overlay::Palette {
                query: String::new(),
                selected: 0
            }
        );
        assert_eq!(
            press(&mut palette, &keymap, KeyCode::Enter),
            Outcome::Run(Command::TabNetwork)
        );
    }
}
