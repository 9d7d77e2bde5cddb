//! One file's editor: ratatui-textarea keeps the text, cursor, undo history and
//! search; drawing is ours, so that lines get syntax colours and diagnostics and
//! only the lines on screen are looked at.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui_textarea::{CursorMove, Input, TextArea};

use super::highlight::{self, Kind};
use super::theme::Styles;
use crate::config::{Diagnostic, Severity};

#[derive(Debug, Clone)]
pub struct Editor {
    text: TextArea<'static>,
    /// First line and first column on screen.
    top: usize,
    left: usize,
}

impl Editor {
    pub fn new(text: &str) -> Self {
        let mut area = TextArea::new(split_lines(text));
        area.set_max_histories(1000);
        Self {
            text: area,
            top: 0,
            left: 0,
        }
    }

    /// The file's text: lines joined by `\n`, as it is saved.
    pub fn contents(&self) -> String {
        self.text.lines().join("\n")
    }

    pub fn lines(&self) -> &[String] {
        self.text.lines()
    }

    /// (line, column), both from 0, in characters.
    pub fn cursor(&self) -> (usize, usize) {
        let cursor = self.text.cursor();
        (cursor.0, cursor.1)
    }

    /// Feeds one key to the text; true when the text changed.
    pub fn input(&mut self, input: Input) -> bool {
        self.text.input(input)
    }

    pub fn insert_str(&mut self, text: &str) -> bool {
        self.text.insert_str(text)
    }

    pub fn move_cursor(&mut self, to: CursorMove) {
        self.text.move_cursor(to);
    }

    pub fn delete_next_char(&mut self) -> bool {
        self.text.delete_next_char()
    }

    pub fn open_line_below(&mut self) {
        self.text.move_cursor(CursorMove::End);
        self.text.insert_newline();
    }

    pub fn undo(&mut self) -> bool {
        self.text.undo()
    }

    pub fn redo(&mut self) -> bool {
        self.text.redo()
    }

    /// Puts the cursor at (line, column), both from 0, clamped to the text.
    pub fn jump(&mut self, line: usize, col: usize) {
        let line = line.min(u16::MAX as usize) as u16;
        let col = col.min(u16::MAX as usize) as u16;
        self.text.move_cursor(CursorMove::Jump(line, col));
    }

    /// Sets the search pattern (a regular expression); an empty one clears it.
    pub fn set_search(&mut self, pattern: &str) -> Result<(), String> {
        self.text
            .set_search_pattern(pattern)
            .map_err(|e| e.to_string())
    }

    pub fn search_forward(&mut self) -> bool {
        self.text.search_forward(false)
    }

    pub fn search_back(&mut self) -> bool {
        self.text.search_back(false)
    }

    pub fn has_search(&self) -> bool {
        self.text.search_pattern().is_some()
    }

    /// Moves the view so that the cursor is inside a `height`×`width` window.
    pub fn follow_cursor(&mut self, height: usize, width: usize) {
        let (line, col) = self.cursor();
        self.top = follow(self.top, line, height);
        self.left = follow(self.left, col, width);
    }

    pub fn page(&mut self, height: usize, down: bool) {
        let (line, col) = self.cursor();
        let target = if down {
            line.saturating_add(height)
        } else {
            line.saturating_sub(height)
        };
        self.jump(target, col);
    }
}

/// The first visible index that keeps `position` inside a window of `size`.
fn follow(first: usize, position: usize, size: usize) -> usize {
    let size = size.max(1);
    if position < first {
        position
    } else if position >= first + size {
        position + 1 - size
    } else {
        first
    }
}

fn split_lines(text: &str) -> Vec<String> {
    text.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line).to_owned())
        .collect()
}

/// What the editor draws besides the text.
pub struct Decorations<'a> {
    /// This file's diagnostics, sorted by line.
    pub diagnostics: &'a [&'a Diagnostic],
    /// Lines an operator's override holds (from 1), with its mark: the
    /// gutter gets a column for them when there are any.
    pub holds: &'a [(u32, char)],
    /// Typing goes into this editor: the terminal's cursor sits at the text cursor.
    pub editing: bool,
}

/// Draws `editor` into `area`: a gutter with line numbers and problem marks,
/// then the visible part of each visible line.
pub fn render(
    frame: &mut Frame,
    area: Rect,
    editor: &Editor,
    decorations: &Decorations<'_>,
    styles: &Styles,
) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let lines = editor.lines();
    let (cursor_line, cursor_col) = editor.cursor();
    let number_width = lines.len().to_string().len();
    // Number, mark, override mark when any, space; dropped on a screen too
    // narrow for it.
    let hold_width = usize::from(!decorations.holds.is_empty());
    let gutter = number_width + 2 + hold_width;
    let gutter = if (area.width as usize) > gutter + 4 {
        gutter
    } else {
        0
    };
    let text_width = area.width as usize - gutter;
    let height = area.height as usize;
    let top = follow(editor.top, cursor_line, height);
    let left = follow(editor.left, cursor_col, text_width);
    let search = editor.text.search_pattern();
    let selection = editor.text.selection_range();

    let mut rendered = Vec::with_capacity(height);
    for (row, text) in lines.iter().enumerate().skip(top).take(height) {
        let line_problems: Vec<&Diagnostic> = decorations
            .diagnostics
            .iter()
            .copied()
            .filter(|d| d.line as usize == row + 1)
            .collect();
        let chars: Vec<char> = text.chars().collect();
        let mut cell_styles = vec![styles.text; chars.len() + 1];
        for (range, kind) in highlight::spans(text) {
            let style = match kind {
                Kind::Keyword => styles.keyword,
                Kind::Name => styles.name,
                Kind::Address => styles.address,
                Kind::Number => styles.number,
                Kind::Comment => styles.comment,
                Kind::Text => styles.text,
            };
            cell_styles[range].fill(style);
        }
        if let Some(pattern) = search {
            for found in pattern.find_iter(text) {
                let start = text[..found.start()].chars().count();
                let end = start + found.as_str().chars().count();
                patch(&mut cell_styles[start..end], styles.search_match);
            }
        }
        if let Some(((from_row, from_col), (to_row, to_col))) = selection
            && (from_row..=to_row).contains(&row)
        {
            let start = if row == from_row { from_col } else { 0 };
            let end = if row == to_row { to_col } else { chars.len() };
            let end = end.min(chars.len());
            patch(&mut cell_styles[start.min(end)..end], styles.selection);
        }
        for problem in &line_problems {
            let start = (problem.col as usize).saturating_sub(1).min(chars.len());
            let end = chars[start..]
                .iter()
                .position(|c| c.is_whitespace())
                .map_or(chars.len(), |n| start + n)
                .max(start + 1);
            patch(
                &mut cell_styles[start..end],
                severity_style(problem.severity, styles),
            );
        }
        if row == cursor_line && !decorations.editing {
            patch(
                &mut cell_styles[cursor_col.min(chars.len())..][..1],
                styles.cursor,
            );
        }

        let mut spans = Vec::new();
        if gutter > 0 {
            let (mark, mark_style) = match line_problems.iter().map(|d| d.severity).min() {
                Some(Severity::Error) => ("E", styles.error),
                Some(Severity::Warning) => ("W", styles.warning),
                None => (" ", styles.line_number),
            };
            spans.push(Span::styled(
                format!("{:>number_width$}", row + 1),
                styles.line_number,
            ));
            spans.push(Span::styled(mark, mark_style));
            if hold_width > 0 {
                let hold = decorations
                    .holds
                    .iter()
                    .find(|(line, _)| *line as usize == row + 1)
                    .map(|(_, mark)| *mark);
                spans.push(match hold {
                    Some(mark) => Span::styled(mark.to_string(), styles.key),
                    None => Span::raw(" "),
                });
            }
            spans.push(Span::raw(" "));
        }
        // A space after the end of the line, so the cursor there is visible.
        let shown: Vec<char> = chars.iter().copied().chain([' ']).collect();
        let end = (left + text_width).min(shown.len());
        let first = left.min(end);
        let mut run_start = first;
        for index in first..=end {
            if index == end || cell_styles[index] != cell_styles[run_start] {
                if index > run_start {
                    let piece: String = shown[run_start..index]
                        .iter()
                        .map(|&c| if c.is_control() { ' ' } else { c })
                        .collect();
                    spans.push(Span::styled(piece, cell_styles[run_start]));
                }
                run_start = index;
            }
        }
        rendered.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(rendered).style(styles.text), area);
    if decorations.editing {
        let x = area.x as usize + gutter + cursor_col - left;
        let y = area.y as usize + cursor_line - top;
        frame.set_cursor_position(Position::new(x as u16, y as u16));
    }
}

fn severity_style(severity: Severity, styles: &Styles) -> Style {
    match severity {
        Severity::Error => styles.error,
        Severity::Warning => styles.warning,
    }
}

fn patch(cells: &mut [Style], over: Style) {
    for cell in cells {
        *cell = cell.patch(over);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_comes_back_as_it_went_in() {
        for text in ["", "a", "a\nb\n", "a\r\nb", "\n\n"] {
            let expected = text.replace("\r\n", "\n");
            assert_eq!(Editor::new(text).contents(), expected);
        }
    }

    #[test]
    fn the_view_follows_the_cursor() {
        assert_eq!(follow(0, 5, 10), 0);
        assert_eq!(follow(0, 10, 10), 1);
        assert_eq!(follow(8, 3, 10), 3);
        assert_eq!(follow(0, 3, 0), 3);
    }
}
