//! Reads keepalived.conf as keepalived's own parser does (lib/parser.c) into
//! a tree of statements: `#` and `!` comments, `include` globs (relative to
//! the including file), `$NAME=value` macros, `@ID` / `@^ID` lines of one
//! instance, `~SEQ` repetitions, and `{ }` wherever they are written.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::convert::{Conversion, Files, NoteKind, Options, Place};

/// One statement and the `{ … }` block written after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub place: Place,
    /// Never empty: the keyword, then its values.
    pub words: Vec<String>,
    pub block: Option<Vec<Node>>,
}

impl Node {
    pub fn keyword(&self) -> &str {
        self.words.first().map_or("", String::as_str)
    }

    pub fn args(&self) -> &[String] {
        self.words.get(1..).unwrap_or_default()
    }

    pub fn arg(&self, index: usize) -> Option<&str> {
        self.args().get(index).map(String::as_str)
    }

    /// The statement as written, without its block.
    pub fn text(&self) -> String {
        self.words.join(" ")
    }

    /// The block's statements; none when it has no block.
    pub fn children(&self) -> &[Node] {
        self.block.as_deref().unwrap_or_default()
    }
}

/// Includes nest at most this deep: deeper is a loop keepalived would also
/// refuse to follow for ever.
const MAX_INCLUDE_DEPTH: usize = 32;
/// A line is expanded again at most this many times (values that name
/// macros, multi-line macros that use others).
const MAX_EXPANSIONS: usize = 64;

/// Reads `path` and what it includes; an unreadable `path` is the only error.
pub fn read(
    path: &Path,
    files: &dyn Files,
    options: &Options,
    conversion: &mut Conversion,
) -> std::io::Result<Vec<Node>> {
    let bytes = files.read(path)?;
    let mut reader = Reader {
        files,
        base: lexically_normal(path.parent().unwrap_or(Path::new(""))),
        instance: options.instance.as_deref(),
        macros: BTreeMap::new(),
        defining: None,
        budget: MAX_LINES,
        open: Vec::new(),
        statements: Vec::new(),
        conversion,
    };
    let text = crate::convert::text_of(bytes, &reader.shown(path), reader.conversion);
    reader.file(path, &text);
    let statements = std::mem::take(&mut reader.statements);
    Ok(tree(statements, conversion))
}

/// A statement as keepalived hands it to a keyword: its words, or a lone brace.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    place: Place,
    words: Vec<String>,
}

struct Reader<'a> {
    files: &'a dyn Files,
    /// The main file's directory: places are written relative to it, as
    /// keepalived's own messages name included files.
    base: PathBuf,
    instance: Option<&'a str>,
    /// Each macro's lines: one, or several for a definition continued with `\`.
    macros: BTreeMap<String, Vec<String>>,
    /// The multi-line macro whose continuation lines come next.
    defining: Option<String>,
    /// The lines still to read: sequences and macros that use each other
    /// could otherwise multiply without end.
    budget: usize,
    /// The files being read, outermost first: an include of one is a loop.
    open: Vec<PathBuf>,
    statements: Vec<Statement>,
    conversion: &'a mut Conversion,
}

impl Reader<'_> {
    fn file(&mut self, path: &Path, text: &str) {
        let name = self.shown(path);
        self.open.push(lexically_normal(path));
        for (index, raw) in text.lines().enumerate() {
            let place = Place {
                file: name.clone(),
                line: u32::try_from(index + 1).unwrap_or(u32::MAX),
            };
            self.physical_line(&place, raw);
        }
        self.defining = None;
        self.open.pop();
    }

    /// How the report names `path`: relative to the main file's directory
    /// when it is under it.
    fn shown(&self, path: &Path) -> String {
        let path = lexically_normal(path);
        path.strip_prefix(&self.base)
            .unwrap_or(&path)
            .display()
            .to_string()
    }

    fn physical_line(&mut self, place: &Place, raw: &str) {
        let (text, continued) = decomment(raw);
        if let Some(name) = self.defining.clone() {
            if !text.is_empty()
                && let Some(lines) = self.macros.get_mut(&name)
            {
                lines.push(text);
            }
            if !continued {
                self.defining = None;
            }
            return;
        }
        if !text.is_empty() {
            self.logical_line(place, &text, continued, 0);
        }
    }

    /// A line without its comment: conditionals, definitions, `~SEQ`,
    /// macro uses and includes are taken in keepalived's order.
    fn logical_line(&mut self, place: &Place, text: &str, continued: bool, depth: usize) {
        match self.budget {
            0 => return,
            1 => self.conversion.note(
                place,
                NoteKind::Error,
                format!("more than {MAX_LINES} lines once sequences and macros are expanded; the rest is left out"),
            ),
            _ => {}
        }
        self.budget -= 1;
        let Some(text) = self.conditional(place, text) else {
            return;
        };
        if let Some((name, value)) = definition(&text) {
            let first = (!value.is_empty()).then_some(value);
            self.macros
                .insert(name.clone(), first.into_iter().collect());
            if continued {
                self.defining = Some(name);
            }
            return;
        }
        if text.starts_with("~SEQ") || text.starts_with("~LST") {
            self.sequence(place, &text, depth);
            return;
        }
        if text.starts_with('~') {
            self.conversion.note(
                place,
                NoteKind::Unknown,
                format!("`{text}`: keepalived repeats lines with ~SEQ and ~LST only; left out"),
            );
            return;
        }
        if text.contains('$') {
            if depth >= MAX_EXPANSIONS {
                self.conversion.note(
                    place,
                    NoteKind::Error,
                    "macros expand into themselves; the line is left out",
                );
                return;
            }
            let expanded = match self.expand(&text) {
                Ok(expanded) => expanded,
                Err(why) => {
                    self.conversion.note(
                        place,
                        NoteKind::Error,
                        format!("{why}; the line is left out"),
                    );
                    return;
                }
            };
            if let Some((line, more)) = expanded {
                if line.len() > MAX_LINE_LEN {
                    self.conversion.note(
                        place,
                        NoteKind::Error,
                        format!(
                            "macros expand this line beyond {MAX_LINE_LEN} characters; left out"
                        ),
                    );
                    return;
                }
                // The result is read again, as keepalived does: it may use
                // or define macros, or be an `@` line. Its comments went
                // before: a `#` now is a value (`${_HASH}`).
                for line in std::iter::once(line).chain(more) {
                    let line = line.trim();
                    if !line.is_empty() {
                        self.logical_line(place, line, false, depth + 1);
                    }
                }
                return;
            }
        }
        if let Some(pattern) = include_pattern(&text) {
            self.include(place, pattern);
            return;
        }
        self.statements
            .extend(split_braces(&text).into_iter().map(|words| Statement {
                place: place.clone(),
                words,
            }));
    }

    /// The line without its `@ID` when it applies to this instance; `None`
    /// when it does not, or when no instance was given (reported).
    fn conditional(&mut self, place: &Place, text: &str) -> Option<String> {
        let Some(rest) = text.strip_prefix('@') else {
            return Some(text.to_owned());
        };
        let (negated, rest) = match rest.strip_prefix('^') {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let (id, line) = rest.split_once([' ', '\t'])?;
        let line = line.trim_start();
        let Some(instance) = self.instance else {
            let whose = if negated {
                format!("every keepalived instance but `{id}`")
            } else {
                format!("keepalived instance `{id}`")
            };
            self.conversion.note(
                place,
                NoteKind::Dropped,
                format!(
                    "`{line}` left out: the line is for {whose}, and no `--instance` was given (keepalived's --config-id, by default the host name)"
                ),
            );
            return None;
        };
        ((id == instance) != negated).then(|| line.to_owned())
    }

    /// Replaces `$NAME` and `${NAME}` by the macros' values, up to the first
    /// multi-line macro: its first line takes its place, its other lines
    /// come after the line. `None` when the line names no macro; an error
    /// when it names one of keepalived's that only keepalived can know.
    fn expand(&self, text: &str) -> Result<Option<(String, Vec<String>)>, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut found = false;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let Some((lines, len)) = macro_use(after)
                .map(|(name, len)| Ok::<_, String>((self.value_of(name)?, len)))
                .transpose()?
                .and_then(|(lines, len)| Some((lines?, len)))
            else {
                out.push('$');
                rest = after;
                continue;
            };
            found = true;
            rest = &after[len..];
            if let [first, more @ ..] = lines.as_slice()
                && !more.is_empty()
            {
                out.push_str(first);
                out.push_str(rest);
                return Ok(Some((out, more.to_vec())));
            }
            out.push_str(lines.first().map_or("", String::as_str));
        }
        out.push_str(rest);
        Ok(found.then_some((out, Vec::new())))
    }

    /// The lines of the macro `name`: the configuration's own, or one of
    /// those keepalived defines (`_PWD`, `_INSTANCE`, `_HASH`, `_BANG`).
    /// `None` when there is none of that name.
    fn value_of(&self, name: &str) -> Result<Option<Vec<String>>, String> {
        if let Some(lines) = self.macros.get(name) {
            return Ok(Some(lines.clone()));
        }
        let value = match name {
            // keepalived reads each file from its own directory.
            "_PWD" => self
                .open
                .last()
                .and_then(|file| file.parent())
                .map_or(String::new(), |dir| dir.display().to_string()),
            "_INSTANCE" => self.instance.map(str::to_owned).ok_or(
                "`${_INSTANCE}` is keepalived's --config-id (by default the host name), and no `--instance` was given",
            )?,
            "_HASH" => "#".to_owned(),
            "_BANG" => "!".to_owned(),
            "_RANDOM" => {
                return Err(
                    "`${_RANDOM}` is a new number each time keepalived starts; write the value meant".to_owned(),
                );
            }
            "_ENV" => {
                return Err(
                    "`${_ENV …}` is keepalived's environment when it starts, unknown here; write the value meant".to_owned(),
                );
            }
            _ => return Ok(None),
        };
        Ok(Some(vec![value]))
    }

    /// `~SEQ(VAR, END)`, `~SEQ(VAR, START, END)` or `~SEQ(VAR, START, STEP,
    /// END)` then a line: the line once for each value of `$VAR`.
    /// `~LST(VAR, V1, V2…)` or `~LST({A, B}, {A1, B1}, {A2, B2}…)`: the line
    /// once for each value, or set of values (a missing one is empty).
    fn sequence(&mut self, place: &Place, text: &str, depth: usize) {
        if text.starts_with("~LST") {
            let Some((names, sets, line)) = list_values(text) else {
                self.conversion.note(
                    place,
                    NoteKind::Error,
                    format!("`{text}`: not a list this converter reads (~LST(VAR, V1, V2…) or ~LST({{A, B}}, {{A1, B1}}…) then a line); left out"),
                );
                return;
            };
            for set in sets {
                for (index, name) in names.iter().enumerate() {
                    let value = set.get(index).cloned().unwrap_or_default();
                    self.macros.insert(name.clone(), vec![value]);
                }
                self.logical_line(place, line, false, depth + 1);
            }
            return;
        }
        let Some((values, line)) = sequence_values(text) else {
            self.conversion.note(
                place,
                NoteKind::Error,
                format!("`{text}`: not a sequence this converter reads (~SEQ(VAR, START, STEP, END) then a line); left out"),
            );
            return;
        };
        let (name, numbers) = values;
        // Like keepalived, the variable keeps its last value afterwards.
        for number in numbers {
            self.macros.insert(name.clone(), vec![number.to_string()]);
            self.logical_line(place, line, false, depth + 1);
        }
    }

    fn include(&mut self, place: &Place, pattern: &str) {
        let pattern = Path::new(pattern);
        // keepalived reads an included file from its own directory, so a
        // relative include is relative to the file that names it.
        let pattern = match self.open.last().and_then(|file| file.parent()) {
            Some(dir) if pattern.is_relative() => dir.join(pattern),
            _ => pattern.to_owned(),
        };
        let matches = match self.files.glob(&pattern) {
            Ok(matches) => matches,
            Err(error) => {
                self.conversion.note(
                    place,
                    NoteKind::Error,
                    format!("include {}: {error}", self.shown(&pattern)),
                );
                return;
            }
        };
        let has_wildcards = pattern.to_string_lossy().contains(['*', '?', '[', '{']);
        if matches.is_empty() && !has_wildcards {
            self.conversion.note(
                place,
                NoteKind::Error,
                format!("include {}: no such file", self.shown(&pattern)),
            );
        }
        for path in matches {
            if self.open.contains(&lexically_normal(&path)) {
                self.conversion.note(
                    place,
                    NoteKind::Error,
                    format!(
                        "include {}: an include loop (the file is already being read); not read again",
                        self.shown(&path)
                    ),
                );
                continue;
            }
            if self.open.len() >= MAX_INCLUDE_DEPTH {
                self.conversion.note(
                    place,
                    NoteKind::Error,
                    format!(
                        "include {}: includes nest deeper than {MAX_INCLUDE_DEPTH}; not read",
                        self.shown(&path)
                    ),
                );
                continue;
            }
            match self.files.read(&path) {
                Ok(bytes) => {
                    // A multi-line macro cannot continue into another file.
                    self.defining = None;
                    let text = crate::convert::text_of(bytes, &self.shown(&path), self.conversion);
                    self.file(&path, &text);
                }
                Err(error) => self.conversion.note(
                    place,
                    NoteKind::Error,
                    format!("include {}: {error}", self.shown(&path)),
                ),
            }
        }
    }
}

/// `path` without its `.` and `dir/..` components: the same file under a
/// name that an include loop repeats exactly.
fn lexically_normal(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(normal.components().next_back(), Some(Component::Normal(_))) =>
            {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

/// The line without its comment, leading and trailing blanks, and whether
/// it ends in `\` (a macro definition continued on the next line). `\#` and
/// `\!` are the characters themselves; nothing in `"…"` starts a comment.
fn decomment(raw: &str) -> (String, bool) {
    let mut out = String::with_capacity(raw.len());
    let mut quoted = false;
    let mut continued = false;
    let mut chars = raw.trim_start_matches([' ', '\t']).chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                out.push(c);
            }
            '\\' => match chars.next() {
                None => {
                    continued = true;
                    break;
                }
                Some(next @ ('#' | '!')) if !quoted => out.push(next),
                Some(next) => {
                    out.push(c);
                    out.push(next);
                }
            },
            '#' | '!' if !quoted => break,
            _ => out.push(c),
        }
    }
    let trimmed = out.trim_end_matches([' ', '\t', '\r']).len();
    out.truncate(trimmed);
    (out, continued)
}

/// `$NAME=value` (blanks allowed before `=`): the name and the value.
fn definition(text: &str) -> Option<(String, String)> {
    let rest = text.strip_prefix('$')?;
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let name = &rest[..name_len];
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return None;
    }
    let value = rest[name_len..]
        .trim_start_matches([' ', '\t'])
        .strip_prefix('=')?;
    Some((
        name.to_owned(),
        value.trim_start_matches([' ', '\t']).to_owned(),
    ))
}

/// After a `$`: the macro name it uses and how many characters that takes.
/// Braces may hold parameters after the name (`${_RANDOM 1 9}`).
fn macro_use(after: &str) -> Option<(&str, usize)> {
    if let Some(braced) = after.strip_prefix('{') {
        let end = braced.find('}')?;
        let name = braced[..end].split([' ', '\t']).next().unwrap_or("");
        return Some((name, end + 2));
    }
    let len = after
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(after.len());
    (len > 0).then(|| (&after[..len], len))
}

/// The most lines a configuration expands to.
const MAX_LINES: usize = 100_000;
/// The longest line macros may make (keepalived's own buffer is smaller).
const MAX_LINE_LEN: usize = 64 * 1024;

/// Sequences longer than this are a mistake, not a configuration.
const MAX_SEQUENCE: usize = 4096;

type Sequence = (String, Vec<i64>);

fn sequence_values(text: &str) -> Option<(Sequence, &str)> {
    let rest = text.strip_prefix("~SEQ(")?;
    let (inside, line) = rest.split_once(')')?;
    let parts: Vec<&str> = inside.split(',').map(str::trim).collect();
    let (name, numbers) = parts.split_first()?;
    let numbers: Vec<i64> = numbers
        .iter()
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    let (start, step, end) = match numbers[..] {
        [end] => (1, 1, end),
        [start, end] => (start, 1, end),
        [start, step, end] => (start, step, end),
        _ => return None,
    };
    if name.is_empty() || step == 0 || end.checked_sub(start)?.signum() * step.signum() < 0 {
        return None;
    }
    let values: Vec<i64> = std::iter::successors(Some(start), |n| n.checked_add(step))
        .take_while(|n| if step > 0 { *n <= end } else { *n >= end })
        .take(MAX_SEQUENCE + 1)
        .collect();
    if values.len() > MAX_SEQUENCE {
        return None;
    }
    Some(((name.to_string(), values), line.trim_start()))
}

/// The values of `~LST`, a set per repetition of its line.
type ValueSets = Vec<Vec<String>>;

/// The names, the sets of values and the line of `~LST(…) LINE`. Values
/// are single words; a set with more values than names is refused, as
/// keepalived refuses it.
fn list_values(text: &str) -> Option<(Vec<String>, ValueSets, &str)> {
    let rest = text.strip_prefix("~LST")?.trim_start().strip_prefix('(')?;
    let (inside, line) = rest.split_once(')')?;
    let mut items = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (at, c) in inside.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inside[start..at]);
                start = at + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return None;
        }
    }
    items.push(&inside[start..]);
    let words = |item: &str| -> Vec<String> {
        let item = item.trim();
        let item = item
            .strip_prefix('{')
            .and_then(|inner| inner.strip_suffix('}'))
            .unwrap_or(item);
        item.split(',').map(|word| word.trim().to_owned()).collect()
    };
    let (names, sets) = items.split_first()?;
    let names = words(names);
    let sets: Vec<Vec<String>> = sets.iter().map(|set| words(set)).collect();
    let valid = |name: &String| {
        name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !names.iter().all(valid)
        || sets.is_empty()
        || sets.len() > MAX_SEQUENCE
        || sets.iter().any(|set| set.len() > names.len())
    {
        return None;
    }
    Some((names, sets, line.trim_start()))
}

/// `include PATTERN` and its variants (`includer`, `includew`, …).
fn include_pattern(text: &str) -> Option<&str> {
    let (word, rest) = text.split_once([' ', '\t'])?;
    matches!(
        word,
        "include" | "includer" | "includem" | "includew" | "includeb" | "includea"
    )
    .then(|| rest.trim())
}

/// The line as keepalived's keywords see it: each `{` and `}` outside
/// quotes a statement of its own, the words between split at blanks, a
/// `"quoted string"` one word without its quotes.
fn split_braces(text: &str) -> Vec<Vec<String>> {
    let mut statements = Vec::new();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let finish = |word: &mut String, in_word: &mut bool, words: &mut Vec<String>| {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    };
    for c in text.chars() {
        match c {
            '"' => {
                if quoted {
                    finish(&mut word, &mut in_word, &mut words);
                } else {
                    finish(&mut word, &mut in_word, &mut words);
                    in_word = true;
                }
                quoted = !quoted;
            }
            _ if quoted => word.push(c),
            ' ' | '\t' => finish(&mut word, &mut in_word, &mut words),
            '{' | '}' => {
                finish(&mut word, &mut in_word, &mut words);
                if !words.is_empty() {
                    statements.push(std::mem::take(&mut words));
                }
                statements.push(vec![c.to_string()]);
            }
            _ => {
                word.push(c);
                in_word = true;
            }
        }
    }
    finish(&mut word, &mut in_word, &mut words);
    if !words.is_empty() {
        statements.push(words);
    }
    statements
}

/// Nests the statements: a `{` opens a block for the statement before it.
/// Unbalanced braces are reported; a block never closed still counts.
fn tree(statements: Vec<Statement>, conversion: &mut Conversion) -> Vec<Node> {
    // Each open block: the statement that owns it (none for a stray `{`),
    // and its statements so far.
    let mut stack: Vec<(Option<Node>, Vec<Node>)> = vec![(None, Vec::new())];
    let mut after_statement = false;
    for statement in statements {
        let brace = statement.words.len() == 1 && matches!(statement.words[0].as_str(), "{" | "}");
        match statement.words.first().map(String::as_str) {
            Some("{") if brace => {
                let owner = if after_statement {
                    stack.last_mut().and_then(|(_, nodes)| nodes.pop())
                } else {
                    None
                };
                if owner.is_none() {
                    conversion.note(
                        &statement.place,
                        NoteKind::Error,
                        "`{` with no keyword before it; its block is left out",
                    );
                }
                stack.push((owner, Vec::new()));
            }
            Some("}") if brace => {
                if stack.len() == 1 {
                    conversion.note(&statement.place, NoteKind::Error, "`}` closes no block");
                } else {
                    close(&mut stack);
                }
            }
            _ => {
                if let Some((_, nodes)) = stack.last_mut() {
                    nodes.push(Node {
                        place: statement.place,
                        words: statement.words,
                        block: None,
                    });
                }
            }
        }
        after_statement = !brace;
    }
    while stack.len() > 1 {
        if let Some((Some(owner), _)) = stack.last() {
            conversion.note(
                &owner.place,
                NoteKind::Error,
                format!(
                    "the block of `{}` is never closed (a `}}` is missing)",
                    owner.text()
                ),
            );
        }
        close(&mut stack);
    }
    stack.pop().map(|(_, nodes)| nodes).unwrap_or_default()
}

/// Ends the innermost block: it becomes its owner's, in the block around it.
fn close(stack: &mut Vec<(Option<Node>, Vec<Node>)>) {
    if let Some((owner, nodes)) = stack.pop()
        && let Some(mut owner) = owner
        && let Some((_, outer)) = stack.last_mut()
    {
        owner.block = Some(nodes);
        outer.push(owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    /// Files held in memory, for includes without a disk.
    struct Memory(Vec<(&'static str, &'static str)>);

    impl Files for Memory {
        fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
            self.0
                .iter()
                .find(|(name, _)| Path::new(name) == path)
                .map(|(_, text)| text.as_bytes().to_vec())
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }

        fn glob(&self, pattern: &Path) -> io::Result<Vec<PathBuf>> {
            let pattern = lexically_normal(pattern);
            let pattern = pattern.to_string_lossy();
            let (prefix, suffix) = pattern.split_once('*').unwrap_or((&pattern, ""));
            let mut found: Vec<PathBuf> = self
                .0
                .iter()
                .filter(|(name, _)| {
                    if pattern.contains('*') {
                        name.starts_with(prefix) && name.ends_with(suffix)
                    } else {
                        *name == pattern
                    }
                })
                .map(|(name, _)| PathBuf::from(name))
                .collect();
            found.sort();
            Ok(found)
        }
    }

    fn parse(
        files: &[(&'static str, &'static str)],
        instance: Option<&str>,
    ) -> (Vec<Node>, Vec<String>) {
        let mut conversion = Conversion::default();
        let options = Options {
            instance: instance.map(str::to_owned),
        };
        let nodes = read(
            Path::new(files[0].0),
            &Memory(files.to_vec()),
            &options,
            &mut conversion,
        )
        .expect("the main file");
        (nodes, conversion.report_lines())
    }

    /// The tree as one line per statement, indented by depth.
    fn shape(nodes: &[Node]) -> Vec<String> {
        fn walk(nodes: &[Node], depth: usize, out: &mut Vec<String>) {
            for node in nodes {
                out.push(format!("{}{}", "  ".repeat(depth), node.words.join("|")));
                walk(node.children(), depth + 1, out);
            }
        }
        let mut out = Vec::new();
        walk(nodes, 0, &mut out);
        out
    }

    #[test]
    fn braces_open_blocks_on_the_same_line_the_next_line_or_inline() {
        let text = "virtual_server 10.0.0.1 80 {\n  real_server 10.0.1.1 80\n  {\n weight 2 }\n}\nglobal_defs { router_id a }\n";
        let (nodes, notes) = parse(&[("k.conf", text)], None);
        assert_eq!(
            shape(&nodes),
            [
                "virtual_server|10.0.0.1|80",
                "  real_server|10.0.1.1|80",
                "    weight|2",
                "global_defs",
                "  router_id|a",
            ]
        );
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn comments_start_at_hash_or_bang_outside_quotes() {
        let text = "a 1 # one\nb \"x # y\" ! two\nc \\#3\n! whole line\n   # indented\n";
        let (nodes, _) = parse(&[("k.conf", text)], None);
        assert_eq!(shape(&nodes), ["a|1", "b|x # y", "c|#3"]);
    }

    #[test]
    fn macros_expand_plain_braced_nested_and_multiline() {
        let text = "$PORT=80\n$VIP = 10.0.0.1 ${PORT}\n$RS=real_server 10.0.1.1 $PORT \\\n{ weight 3 }\nvirtual_server $VIP {\n$RS\n}\nsorry $UNDEFINED\n";
        let (nodes, _) = parse(&[("k.conf", text)], None);
        assert_eq!(
            shape(&nodes),
            [
                "virtual_server|10.0.0.1|80",
                "  real_server|10.0.1.1|80",
                "    weight|3",
                "sorry|$UNDEFINED",
            ]
        );
    }

    #[test]
    fn a_macro_that_names_itself_ends() {
        let (nodes, notes) = parse(&[("k.conf", "$A=x $A\nline $A\n")], None);
        assert!(nodes.is_empty(), "{nodes:?}");
        assert_eq!(notes.len(), 1, "{notes:?}");
    }

    #[test]
    fn a_macro_that_doubles_itself_stops_at_a_length() {
        let (nodes, notes) = parse(&[("k.conf", "$A=xx\n$B=$A$A\nline $B $B\n")], None);
        assert_eq!(shape(&nodes), ["line|xxxx|xxxx"]);
        assert!(notes.is_empty(), "{notes:?}");
        let (nodes, notes) = parse(&[("k.conf", "$A=x$A$A\nline $A\n")], None);
        assert!(nodes.is_empty(), "{nodes:?}");
        assert_eq!(notes.len(), 1, "{notes:?}");
    }

    #[test]
    fn conditional_lines_follow_the_instance() {
        let text = "@lb1 a 1\n@^lb1 b 2\n@lb2 c 3\nd 4\n";
        let (with, notes) = parse(&[("k.conf", text)], Some("lb1"));
        assert_eq!(shape(&with), ["a|1", "d|4"]);
        assert!(notes.is_empty());
        let (other, _) = parse(&[("k.conf", text)], Some("lb2"));
        assert_eq!(shape(&other), ["b|2", "c|3", "d|4"]);
        let (without, notes) = parse(&[("k.conf", text)], None);
        assert_eq!(shape(&without), ["d|4"]);
        assert_eq!(notes.len(), 3, "{notes:?}");
    }

    #[test]
    fn sequences_repeat_a_line() {
        let (nodes, _) = parse(&[("k.conf", "~SEQ(i, 1, 2, 5) rs 10.0.0.$i\n")], None);
        assert_eq!(shape(&nodes), ["rs|10.0.0.1", "rs|10.0.0.3", "rs|10.0.0.5"]);
    }

    #[test]
    fn lists_repeat_a_line_for_each_value_or_set() {
        let (nodes, notes) = parse(
            &[(
                "k.conf",
                "~LST(ip, 11, 12) rs 10.0.0.$ip
",
            )],
            None,
        );
        assert_eq!(shape(&nodes), ["rs|10.0.0.11", "rs|10.0.0.12"]);
        assert!(notes.is_empty(), "{notes:?}");
        let text = "~LST({ip, w}, {11, 3}, {12}) rs 10.0.0.$ip w$w\n";
        let (nodes, _) = parse(&[("k.conf", text)], None);
        assert_eq!(shape(&nodes), ["rs|10.0.0.11|w3", "rs|10.0.0.12|w"]);
        let (nodes, notes) = parse(&[("k.conf", "~LST({a}, {1, 2}) x $a\n")], None);
        assert!(nodes.is_empty() && notes.len() == 1, "{nodes:?} {notes:?}");
    }

    #[test]
    fn keepalived_s_own_macros_are_known_or_reported() {
        let files = [(
            "/etc/k/main.conf",
            "a ${_PWD} $_HASH ${_BANG}\nb ${_INSTANCE}\nc ${_RANDOM 1 9}\n",
        )];
        let (nodes, notes) = parse(&files, Some("lb1"));
        assert_eq!(shape(&nodes), ["a|/etc/k|#|!", "b|lb1"]);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("_RANDOM"), "{notes:?}");
        let (nodes, notes) = parse(&files, None);
        assert_eq!(shape(&nodes), ["a|/etc/k|#|!"]);
        assert!(notes[0].contains("no `--instance`"), "{notes:?}");
    }

    #[test]
    fn includes_are_relative_nested_and_loops_are_cut() {
        let files = [
            ("/etc/k/main.conf", "include conf.d/*.conf\nend 1\n"),
            (
                "/etc/k/conf.d/a.conf",
                "a 1\ninclude ../main.conf\ninclude missing.conf\n",
            ),
            ("/etc/k/conf.d/b.conf", "b 2\n"),
        ];
        let (nodes, notes) = parse(&files, None);
        assert_eq!(shape(&nodes), ["a|1", "b|2", "end|1"]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("loop"), "{notes:?}");
        assert!(notes[1].contains("no such file"), "{notes:?}");
    }

    #[test]
    fn unbalanced_braces_are_reported() {
        let (nodes, notes) = parse(&[("k.conf", "}\na {\nb 1\n{\n")], None);
        assert_eq!(shape(&nodes), ["a", "  b|1"]);
        assert_eq!(notes.len(), 3, "{notes:?}");
    }
}
