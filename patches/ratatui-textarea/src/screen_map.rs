use crate::cursor::{DataCursor, ScreenCursor};
use crate::textarea::TextArea;
use crate::util::{char_width, num_digits};
use crate::wrap::{WrapMode, WrappedLine, effective_wrap_width, push_wrapped_rows};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScreenLine {
    pub wrapped: WrappedLine,
    pub screen_width: usize,
    pub cursor_max_col: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DataLine {
    pub first_screen_line: usize,
    pub screen_line_count: usize,
    pub pure_ascii: bool,
}

fn is_pure_ascii(line: &str) -> bool {
    line.is_ascii() && !line.contains('\t')
}

fn char_display_width(c: char, col: usize, tab_len: u8, mask: Option<char>) -> usize {
    // A masked line is drawn as one mask character per char, so each char is as wide as the mask.
    if let Some(mask) = mask {
        char_width(mask)
    } else if c == '\t' {
        let tab = tab_len.max(1) as usize;
        let pad = tab - (col % tab);
        pad.max(1)
    } else {
        char_width(c)
    }
}

fn display_width(text: &str, tab_len: u8, mask: Option<char>) -> usize {
    let mut col = 0usize;
    for c in text.chars() {
        col += char_display_width(c, col, tab_len, mask);
    }
    col
}

fn screen_col_for_char_offset(
    text: &str,
    char_offset: usize,
    tab_len: u8,
    mask: Option<char>,
) -> usize {
    let mut col = 0usize;
    for c in text.chars().take(char_offset) {
        col += char_display_width(c, col, tab_len, mask);
    }
    col
}

fn char_offset_for_screen_col(
    text: &str,
    screen_col: usize,
    tab_len: u8,
    mask: Option<char>,
) -> usize {
    let mut col = 0usize;
    let mut chars = 0usize;
    for c in text.chars() {
        if col >= screen_col {
            break;
        }
        let width = char_display_width(c, col, tab_len, mask);
        if col + width > screen_col {
            break;
        }
        col += width;
        chars += 1;
    }
    chars
}

/// What an edit did to the text: rows `first..first + removed` were replaced by rows
/// `first..first + inserted`; the rows after them are unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowChange {
    pub first: usize,
    pub removed: usize,
    pub inserted: usize,
}

impl TextArea<'_> {
    /// The width lines wrap at, or `None` when they do not wrap.
    fn screen_wrap_width(&self) -> Option<usize> {
        if self.wrap_mode() == WrapMode::None {
            return None;
        }
        let width = self.area.get().width;
        if width == 0 {
            return None;
        }
        let line_number_len = self
            .line_number_style()
            .map(|_| num_digits(self.lines.len()));
        Some(effective_wrap_width(width, line_number_len))
    }

    /// Appends the screen lines of data row `row` to `screen_lines` and returns its pointer,
    /// numbered as if `screen_lines` started the map.
    fn push_screen_lines(
        &self,
        row: usize,
        wrap_width: Option<usize>,
        screen_lines: &mut Vec<ScreenLine>,
    ) -> DataLine {
        let line = &self.lines[row];
        let (tab_len, mask) = (self.tab_length(), self.mask_char());
        let mut rows = Vec::with_capacity(1);
        push_wrapped_rows(
            &mut rows,
            row,
            line,
            self.wrap_mode(),
            wrap_width,
            tab_len,
            mask,
        );
        let pointer = DataLine {
            first_screen_line: screen_lines.len(),
            screen_line_count: rows.len(),
            pure_ascii: is_pure_ascii(line),
        };
        for wrapped in rows {
            let fragment = &line[wrapped.start_byte..wrapped.end_byte];
            let char_count = wrapped.end_col.saturating_sub(wrapped.start_col);
            let screen_width = display_width(fragment, tab_len, mask);
            let cursor_max_col = if wrapped.last_in_row {
                screen_width
            } else {
                screen_col_for_char_offset(fragment, char_count.saturating_sub(1), tab_len, mask)
            };
            screen_lines.push(ScreenLine {
                wrapped,
                screen_width,
                cursor_max_col,
            });
        }
        pointer
    }

    /// Builds the screen map of the whole text.
    pub(crate) fn screen_map_load(&self) {
        let wrap_width = self.screen_wrap_width();
        let mut screen_lines = Vec::with_capacity(self.lines.len());
        let data_pointers = (0..self.lines.len())
            .map(|row| self.push_screen_lines(row, wrap_width, &mut screen_lines))
            .collect();
        *self.screen_lines.borrow_mut() = screen_lines;
        *self.data_pointers.borrow_mut() = data_pointers;
        self.screen_map_wrap_width.set(wrap_width);
    }

    /// Updates the screen map after an edit: only the rows the edit replaced are measured again,
    /// the rest are shifted. On a long text this keeps an edit's cost independent of its length.
    /// Falls back to [`Self::screen_map_load`] when the map cannot be updated in place (the wrap
    /// width changed, or the change does not match the text).
    pub(crate) fn screen_map_update(&self, change: RowChange) {
        let RowChange {
            first,
            removed,
            inserted,
        } = change;
        let wrap_width = self.screen_wrap_width();
        let old_rows = self.data_pointers.borrow().len();
        let in_place = wrap_width == self.screen_map_wrap_width.get()
            && first + removed <= old_rows
            && old_rows - removed + inserted == self.lines.len();
        if !in_place {
            self.screen_map_load();
            return;
        }

        let mut screen_lines = self.screen_lines.borrow_mut();
        let mut data_pointers = self.data_pointers.borrow_mut();
        let old_start = data_pointers
            .get(first)
            .map_or(screen_lines.len(), |line| line.first_screen_line);
        let old_end = match removed {
            0 => old_start,
            _ => {
                let last = &data_pointers[first + removed - 1];
                last.first_screen_line + last.screen_line_count
            }
        };

        let mut new_lines = Vec::with_capacity(old_end - old_start);
        let new_pointers: Vec<DataLine> = (first..first + inserted)
            .map(|row| {
                let mut pointer = self.push_screen_lines(row, wrap_width, &mut new_lines);
                pointer.first_screen_line += old_start;
                pointer
            })
            .collect();
        let new_end = old_start + new_lines.len();
        let screen_shift = new_end as isize - old_end as isize;
        let row_shift = inserted as isize - removed as isize;

        screen_lines.splice(old_start..old_end, new_lines);
        data_pointers.splice(first..first + removed, new_pointers);
        if row_shift != 0 {
            for line in &mut screen_lines[new_end..] {
                line.wrapped.row = line.wrapped.row.wrapping_add_signed(row_shift);
            }
        }
        if screen_shift != 0 {
            for pointer in &mut data_pointers[first + inserted..] {
                pointer.first_screen_line =
                    pointer.first_screen_line.wrapping_add_signed(screen_shift);
            }
        }
    }

    pub(crate) fn screen_lines_count(&self) -> usize {
        self.screen_lines.borrow().len()
    }

    pub(crate) fn screen_line_width(&self, row: usize) -> usize {
        self.screen_lines.borrow()[row].screen_width
    }

    pub(crate) fn screen_line_max_cursor_col(&self, row: usize) -> usize {
        self.screen_lines.borrow()[row].cursor_max_col
    }

    pub(crate) fn screen_line(&self, row: usize) -> ScreenLine {
        self.screen_lines.borrow()[row]
    }

    pub(crate) fn screen_to_array(&self, screen: ScreenCursor) -> DataCursor {
        if let Some(dc) = screen.dc {
            return dc;
        }

        let line = self.screen_line(screen.row);
        let fragment =
            &self.lines[line.wrapped.row][line.wrapped.start_byte..line.wrapped.end_byte];
        let char_offset =
            char_offset_for_screen_col(fragment, screen.col, self.tab_length(), self.mask_char());
        DataCursor(line.wrapped.row, line.wrapped.start_col + char_offset)
    }

    pub(crate) fn array_to_screen(&self, array: DataCursor) -> ScreenCursor {
        let data_line = &self.data_pointers.borrow()[array.0];
        let screen_lines = self.screen_lines.borrow();

        let mut screen_idx = data_line.first_screen_line;
        for idx in
            data_line.first_screen_line..data_line.first_screen_line + data_line.screen_line_count
        {
            let line = screen_lines[idx];
            let contains = if line.wrapped.last_in_row {
                line.wrapped.start_col <= array.1 && array.1 <= line.wrapped.end_col
            } else {
                line.wrapped.start_col <= array.1 && array.1 < line.wrapped.end_col
            };
            if contains {
                screen_idx = idx;
                break;
            }
        }

        let line = screen_lines[screen_idx];
        let fragment = &self.lines[array.0][line.wrapped.start_byte..line.wrapped.end_byte];
        let char_offset = array.1.saturating_sub(line.wrapped.start_col);
        let col =
            screen_col_for_char_offset(fragment, char_offset, self.tab_length(), self.mask_char());

        ScreenCursor {
            row: screen_idx,
            col,
            char: self.lines[array.0].chars().nth(array.1),
            dc: Some(array),
        }
    }

    pub(crate) fn data_cursor(&self, screen: ScreenCursor) -> DataCursor {
        screen.to_array_cursor(self)
    }

    pub(crate) fn increment_screen_cursor(&self, screen: ScreenCursor) -> ScreenCursor {
        let dc = self.data_cursor(screen);
        self.array_to_screen(DataCursor(dc.0, dc.1 + 1))
    }

    pub(crate) fn decrement_screen_cursor(&self, screen: ScreenCursor) -> ScreenCursor {
        let dc = self.data_cursor(screen);
        self.array_to_screen(DataCursor(dc.0, dc.1 - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor::CursorMove;
    use ratatui_core::layout::Rect;

    fn make_textarea(lines: &[&str], wrap_mode: WrapMode, width: u16) -> TextArea<'static> {
        let mut textarea = TextArea::from(lines.iter().copied());
        textarea.set_wrap_mode(wrap_mode);
        textarea.area.set(Rect {
            x: 0,
            y: 0,
            width,
            height: 40,
        });
        textarea.screen_map_load();
        textarea
    }

    fn assert_round_trips(textarea: &TextArea<'_>) {
        for (row, line) in textarea.lines.iter().enumerate() {
            for col in 0..=line.chars().count() {
                let dc = DataCursor(row, col);
                let sc = textarea.array_to_screen(dc);
                assert_eq!(textarea.screen_to_array(sc), dc);

                let detached = ScreenCursor { dc: None, ..sc };
                assert_eq!(textarea.screen_to_array(detached), dc);
                assert_eq!(
                    textarea.array_to_screen(textarea.screen_to_array(detached)),
                    sc
                );
            }
        }
    }

    #[test]
    fn screen_map_round_trips_ascii_word_wrap() {
        let textarea = make_textarea(
            &[
                "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
                "Sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.",
            ],
            WrapMode::Word,
            24,
        );

        assert!(textarea.screen_lines_count() > textarea.lines.len());
        assert_round_trips(&textarea);
    }

    #[test]
    fn screen_map_round_trips_cjk_glyph_wrap() {
        let textarea = make_textarea(
            &["混合中文字符和ASCIIabc来验证屏幕坐标与数据坐标的往返转换。"],
            WrapMode::Glyph,
            12,
        );

        assert!(textarea.screen_lines_count() > textarea.lines.len());
        assert_round_trips(&textarea);
    }

    #[test]
    fn screen_map_round_trips_multilingual_word_or_glyph_wrap() {
        let textarea = make_textarea(
            &[
                "ASCII and русский текст can share one buffer.",
                "第二行 mixed-width 内容 with English words.",
            ],
            WrapMode::WordOrGlyph,
            18,
        );

        assert!(textarea.screen_lines_count() > textarea.lines.len());
        assert_round_trips(&textarea);
    }

    /// A small deterministic generator, so that a failure can be replayed.
    struct XorShift(u64);

    impl XorShift {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    fn random_edit(textarea: &mut TextArea<'_>, random: &mut XorShift) {
        const PIECES: [&str; 6] = ["a", "word ", "\t", "混合", "x\ny", "one\n\ntwo three\n"];
        let row = random.below(textarea.lines.len());
        let col = random.below(textarea.lines[row].chars().count() + 1);
        textarea.move_cursor(CursorMove::Jump(row as u16, col as u16));
        match random.below(11) {
            0 => textarea.insert_char(['b', ' ', '\t', '字'][random.below(4)]),
            1 => textarea.insert_newline(),
            2 => {
                textarea.delete_char();
            }
            3 => {
                textarea.delete_next_char();
            }
            4 => {
                textarea.insert_str(PIECES[random.below(PIECES.len())]);
            }
            5 => {
                // Deleting past the end of the text yanks a one-line chunk that `paste` then
                // asserts against: a separate bug, kept out of this test.
                let rest = textarea.lines[row..]
                    .iter()
                    .map(|line| line.chars().count() + 1)
                    .sum::<usize>()
                    - col
                    - 1;
                textarea.delete_str(random.below(30).min(rest));
            }
            6 => {
                textarea.undo();
            }
            7 => {
                textarea.redo();
            }
            8 => {
                textarea.start_selection();
                let row = random.below(textarea.lines.len());
                textarea.move_cursor(CursorMove::Jump(row as u16, 0));
                textarea.cut();
            }
            9 => {
                textarea.paste();
            }
            _ => {
                textarea.delete_line_by_end();
            }
        }
    }

    #[test]
    fn screen_map_updated_by_edits_matches_one_built_from_scratch() {
        let modes = [
            WrapMode::None,
            WrapMode::Word,
            WrapMode::Glyph,
            WrapMode::WordOrGlyph,
        ];
        for (seed, mode) in modes.into_iter().enumerate() {
            let mut random = XorShift(0x9e37_79b9_7f4a_7c15 + seed as u64);
            let mut textarea = make_textarea(
                &[
                    "Lorem ipsum dolor sit amet,",
                    "",
                    "混合中文字符和ASCIIabc",
                    "\tx",
                ],
                mode,
                14,
            );
            // Line numbers make the wrap width depend on the number of lines.
            textarea.set_line_number_style(Default::default());
            for step in 0..2000 {
                random_edit(&mut textarea, &mut random);
                let updated = (
                    textarea.screen_lines.borrow().clone(),
                    textarea.data_pointers.borrow().clone(),
                );
                textarea.screen_map_load();
                let rebuilt = (
                    textarea.screen_lines.borrow().clone(),
                    textarea.data_pointers.borrow().clone(),
                );
                assert_eq!(
                    updated, rebuilt,
                    "{mode:?}, step {step}: {:?}",
                    textarea.lines
                );
            }
        }
    }
}
