//! The event log: what the daemon and the commands did and saw, one JSON
//! object a line in `STATE_DIR/events.jsonl` (health changes with their
//! reasons, applies, confirms, rollbacks, overrides, VRRP states), for
//! `lbconsole events` and the console's events pane.
//!
//! Many processes append (the daemon, a command, the confirm guard), each
//! line in one `write` on a file opened with `O_APPEND`, so lines never
//! interleave. The log is bounded: past [`ROTATE_BYTES`] the file becomes
//! `events.1.jsonl` (replacing the one before), so the newest few thousand
//! events are always kept and the disk never fills. Recording never fails
//! its caller: an event lost is a line in the daemon's log, not a failed
//! apply.
//!
//! A reader may find the last line half-written (a writer mid-way, a crash):
//! it is skipped. A damaged line anywhere else is reported with its line
//! number and the rest is read.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::store::atomic::{FILE_MODE, special_kind};
use crate::store::lock::Lock;
use crate::store::{Links, StoreError, read_capped};

const FILE: &str = "events.jsonl";
const ROTATED: &str = "events.1.jsonl";
/// Held only while a writer rotates, so that two writers never both do.
const ROTATE_LOCK: &str = "events.lock";

/// The log is rotated past this size: with the rotated file, 1 to 2 MiB of
/// the newest events (several thousand) are kept.
pub const ROTATE_BYTES: u64 = 1 << 20;

/// A longer text is cut: a line stays small enough to be one atomic append.
const MAX_TEXT_CHARS: usize = 2000;

/// At most this much is read from the log per poll of `--follow`.
const MAX_POLL_BYTES: u64 = 4 << 20;

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A real server's health changed.
    Health,
    /// An apply changed the kernel (or failed and was undone).
    Apply,
    /// An apply waiting for confirmation was confirmed.
    Confirm,
    /// An unconfirmed apply was rolled back.
    Rollback,
    /// An operator's override of a real server was set or removed.
    Override,
    /// A VRRP instance changed state.
    Vrrp,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Health => "health",
            Self::Apply => "apply",
            Self::Confirm => "confirm",
            Self::Rollback => "rollback",
            Self::Override => "override",
            Self::Vrrp => "vrrp",
        }
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Seconds since the Unix epoch.
    pub at: i64,
    pub kind: EventKind,
    /// Who did it; `None` for what the daemon saw (health, VRRP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub director: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// One sentence.
    pub text: String,
}

impl Event {
    /// An event of now, by nobody in particular.
    pub fn new(kind: EventKind, text: impl Into<String>) -> Self {
        Self {
            at: crate::store::versions::unix_now(),
            kind,
            by: None,
            director: None,
            server: None,
            text: text.into(),
        }
    }

    /// Done by `user`.
    pub fn by(mut self, user: impl Into<String>) -> Self {
        self.by = Some(user.into());
        self
    }

    /// About real server `server` of `director`.
    pub fn server(mut self, director: impl Into<String>, server: impl Into<String>) -> Self {
        self.director = Some(director.into());
        self.server = Some(server.into());
        self
    }

    /// At `at` (seconds since the epoch) rather than now.
    pub fn at(mut self, at: i64) -> Self {
        self.at = at;
        self
    }
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

pub fn rotated_path(state_dir: &Path) -> PathBuf {
    state_dir.join(ROTATED)
}

/// Whether the last attempt to record failed: a full disk or a bad state dir
/// is said once, not at every event.
static FAILING: AtomicBool = AtomicBool::new(false);

/// Appends `event` to the log of `state_dir`. Never fails: an event that
/// cannot be recorded is a line in the process's log (once, until recording
/// works again).
pub fn record(state_dir: &Path, event: &Event) {
    match append(state_dir, event) {
        Ok(()) => FAILING.store(false, Ordering::Relaxed),
        Err(error) => {
            let path = path(state_dir);
            if FAILING.swap(true, Ordering::Relaxed) {
                tracing::debug!("events: cannot record in {}: {error}", path.display());
            } else {
                tracing::error!(
                    "events: cannot record in {}: {error}; events are lost until it works again",
                    path.display()
                );
            }
        }
    }
}

/// The line of `event`: one JSON object and a newline.
fn line(event: &Event) -> io::Result<Vec<u8>> {
    let mut event = event.clone();
    if let Some((cut, _)) = event.text.char_indices().nth(MAX_TEXT_CHARS) {
        event.text.truncate(cut);
        event.text.push('…');
    }
    let mut line = serde_json::to_vec(&event).map_err(io::Error::other)?;
    line.push(b'\n');
    Ok(line)
}

fn append(state_dir: &Path, event: &Event) -> io::Result<()> {
    let line = line(event)?;
    let path = path(state_dir);
    let mut file = open_append(&path)?;
    if file.metadata()?.len() >= ROTATE_BYTES {
        rotate(state_dir, &file)?;
        file = open_append(&path)?;
    }
    // One write: with O_APPEND the line lands whole after every other.
    let written = file.write(&line)?;
    if written != line.len() {
        return Err(io::Error::other(format!(
            "only {written} of {} bytes written (disk full?)",
            line.len()
        )));
    }
    Ok(())
}

/// The log, opened to append: created 0640 whatever the umask, never through
/// a symbolic link, and only a regular file (a FIFO must not block a writer).
fn open_append(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|error| match error.raw_os_error() {
            Some(libc::ELOOP) => io::Error::other("it is a symbolic link, not a regular file"),
            _ => error,
        })?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::other(format!(
            "it is {}, not a regular file",
            special_kind(metadata.file_type())
        )));
    }
    // A new log gets 0640 whatever the umask; an administrator's chmod of
    // one with events in it is kept.
    if metadata.len() == 0 && metadata.permissions().mode() & 0o7777 != FILE_MODE {
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(file)
}

/// Renames the full log (which `file` is open on) to the rotated name, unless
/// another writer did it first.
fn rotate(state_dir: &Path, file: &File) -> io::Result<()> {
    let _rotating = Lock::acquire(&state_dir.join(ROTATE_LOCK))?;
    let path = path(state_dir);
    let ours = file.metadata()?;
    match std::fs::symlink_metadata(&path) {
        Ok(now) if now.dev() == ours.dev() && now.ino() == ours.ino() => {
            std::fs::rename(&path, rotated_path(state_dir))
        }
        // Rotated already by another writer: the new file is there or is
        // about to be.
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// What the log holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Log {
    /// Newest first.
    pub events: Vec<Event>,
    /// Lines that are not events, skipped: `events.jsonl line 12: ...`.
    pub damaged: Vec<String>,
}

/// The newest `newest` events of `state_dir`'s log, newest first; none when
/// there is no log. A log that cannot be read (not a regular file, a
/// symbolic link, an I/O error) is an error.
pub fn read(state_dir: &Path, newest: usize) -> Result<Log, StoreError> {
    let mut log = read_rotated(state_dir)?;
    read_file(&path(state_dir), &mut log)?;
    let skip = log.events.len().saturating_sub(newest);
    log.events = log.events.split_off(skip);
    log.events.reverse();
    Ok(log)
}

/// The events of the rotated log, the older part, oldest first.
pub fn read_rotated(state_dir: &Path) -> Result<Log, StoreError> {
    let mut log = Log::default();
    read_file(&rotated_path(state_dir), &mut log)?;
    Ok(log)
}

fn read_file(path: &Path, log: &mut Log) -> Result<(), StoreError> {
    if let Some(bytes) = read_capped(path, Links::Refuse)? {
        parse(path, &bytes, 0, &mut log.events, &mut log.damaged);
    }
    Ok(())
}

/// The events of the complete lines of `bytes` (a torn last line is left
/// out), whose first line is line `first_line + 1` of `path`.
fn parse(
    path: &Path,
    bytes: &[u8],
    first_line: usize,
    events: &mut Vec<Event>,
    damaged: &mut Vec<String>,
) {
    let complete = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(&bytes[..0], |end| &bytes[..end]);
    if complete.is_empty() {
        return;
    }
    for (index, line) in complete.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Event>(line) {
            Ok(event) => events.push(event),
            Err(error) => damaged.push(format!(
                "{} line {}: {error}",
                path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into()
                ),
                first_line + index + 1
            )),
        }
    }
}

/// Reads what is appended to the log as it grows, through rotations:
/// `lbconsole events --follow`.
#[derive(Debug)]
pub struct Follower {
    state_dir: PathBuf,
    /// The file being read, its identity (device, inode), and how far.
    file: Option<(File, (u64, u64))>,
    offset: u64,
    /// Complete lines read so far from this file, for line numbers.
    lines: usize,
    /// The start of a line whose end is not written yet.
    partial: Vec<u8>,
}

impl Follower {
    /// A follower that starts at the beginning of the current log.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            state_dir: state_dir.to_owned(),
            file: None,
            offset: 0,
            lines: 0,
            partial: Vec::new(),
        }
    }

    /// The events appended since the last poll, oldest first (the first poll:
    /// all of the current file's), and the damaged lines among them.
    pub fn poll(&mut self) -> Result<Log, StoreError> {
        let mut log = Log::default();
        self.read_more(&mut log)?;
        let path = path(&self.state_dir);
        let current = crate::store::open_regular(&path, Links::Refuse)?;
        let identity = current
            .as_ref()
            .map(|file| file.metadata().map(|m| (m.dev(), m.ino())))
            .transpose()
            .map_err(|source| StoreError::File {
                path: path.clone(),
                source,
            })?;
        if identity != self.file.as_ref().map(|(_, id)| *id) {
            // Rotated (or created): the old file was read to its end above.
            self.file = current.zip(identity);
            self.offset = 0;
            self.lines = 0;
            self.partial.clear();
            self.read_more(&mut log)?;
        }
        Ok(log)
    }

    /// Reads the open file from where the last read stopped.
    fn read_more(&mut self, log: &mut Log) -> Result<(), StoreError> {
        let Some((file, _)) = &mut self.file else {
            return Ok(());
        };
        let path = path(&self.state_dir);
        let error = |source| StoreError::File {
            path: path.clone(),
            source,
        };
        file.seek(SeekFrom::Start(self.offset)).map_err(error)?;
        let mut bytes = std::mem::take(&mut self.partial);
        let read = file
            .take(MAX_POLL_BYTES)
            .read_to_end(&mut bytes)
            .map_err(error)?;
        self.offset += read as u64;
        let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.partial = bytes.split_off(end);
        if self.partial.len() as u64 > MAX_POLL_BYTES {
            // No event is this long: not a line being written, but damage.
            log.damaged.push(format!(
                "{FILE} line {}: a line longer than {} MiB, skipped",
                self.lines + 1,
                MAX_POLL_BYTES >> 20
            ));
            self.partial.clear();
        }
        parse(&path, &bytes, self.lines, &mut log.events, &mut log.damaged);
        self.lines += bytes.iter().filter(|&&b| b == b'\n').count();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("lbconsole-events-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("state dir");
        dir
    }

    fn event(n: i64) -> Event {
        Event::new(EventKind::Health, format!("event {n}"))
            .at(1_763_731_200 + n)
            .server("web", "web1")
    }

    fn texts(log: &Log) -> Vec<&str> {
        log.events.iter().map(|e| e.text.as_str()).collect()
    }

    #[test]
    fn recorded_events_read_back_newest_first_with_every_field() {
        let dir = state_dir("read");
        assert_eq!(read(&dir, 10).expect("no log yet"), Log::default());
        let apply = Event::new(EventKind::Apply, "applied version 3: 2 changes").by("alice");
        record(&dir, &event(1));
        record(&dir, &apply);
        record(&dir, &event(2));
        let log = read(&dir, 10).expect("read");
        assert_eq!(
            texts(&log),
            ["event 2", "applied version 3: 2 changes", "event 1"]
        );
        assert_eq!(log.events[1], apply);
        assert_eq!(log.events[0].director.as_deref(), Some("web"));
        assert_eq!(
            texts(&read(&dir, 2).expect("read")),
            ["event 2", "applied version 3: 2 changes"]
        );
        let mode = std::fs::metadata(path(&dir))
            .expect("log")
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o640);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn rotation_keeps_the_newest_events_and_bounds_the_disk() {
        let dir = state_dir("rotate");
        let long = "x".repeat(1500);
        let count = 2 * ROTATE_BYTES as i64 / 1500 + 100;
        for n in 0..count {
            record(&dir, &event(n).at(n).server("web", &long));
        }
        let size = |path: PathBuf| std::fs::metadata(path).expect("file").len();
        assert!(size(path(&dir)) < ROTATE_BYTES + 2000);
        assert!(size(rotated_path(&dir)) < ROTATE_BYTES + 2000);
        let log = read(&dir, usize::MAX).expect("read");
        assert!(log.events.len() > 600, "{} kept", log.events.len());
        assert_eq!(log.events[0].text, format!("event {}", count - 1));
        let ats: Vec<i64> = log.events.iter().map(|e| e.at).collect();
        assert!(
            ats.windows(2).all(|w| w[0] == w[1] + 1),
            "no gap, newest first"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_a_damaged_line_is_named() {
        let dir = state_dir("torn");
        record(&dir, &event(1));
        let mut file = OpenOptions::new()
            .append(true)
            .open(path(&dir))
            .expect("log");
        file.write_all(b"{\"at\": 5, \"kind\"\n").expect("damage");
        drop(file);
        record(&dir, &event(2));
        let mut file = OpenOptions::new()
            .append(true)
            .open(path(&dir))
            .expect("log");
        file.write_all(b"{\"at\": 7, \"ki").expect("torn");
        let log = read(&dir, 10).expect("read");
        assert_eq!(texts(&log), ["event 2", "event 1"]);
        assert_eq!(log.damaged.len(), 1, "{:?}", log.damaged);
        assert!(
            log.damaged[0].starts_with("events.jsonl line 2: "),
            "{:?}",
            log.damaged
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_symbolic_link_a_fifo_or_a_directory_is_refused_never_written_through() {
        let dir = state_dir("special");
        let elsewhere = dir.join("elsewhere");
        std::fs::write(&elsewhere, "").expect("target");
        std::os::unix::fs::symlink(&elsewhere, path(&dir)).expect("link");
        record(&dir, &event(1));
        assert_eq!(std::fs::read(&elsewhere).expect("target"), b"");
        assert!(matches!(read(&dir, 10), Err(StoreError::NotRegular { .. })));
        std::fs::remove_file(path(&dir)).expect("unlink");
        let status = std::process::Command::new("mkfifo")
            .arg(path(&dir))
            .status()
            .expect("mkfifo runs");
        assert!(status.success());
        record(&dir, &event(1));
        assert!(matches!(read(&dir, 10), Err(StoreError::NotRegular { .. })));
        std::fs::remove_file(path(&dir)).expect("unlink");
        std::fs::create_dir(path(&dir)).expect("a directory");
        record(&dir, &event(1));
        let error = read(&dir, 10).expect_err("a directory is no log");
        assert!(error.to_string().contains("events.jsonl"), "{error}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_follower_sees_each_new_event_once_across_a_rotation() {
        let dir = state_dir("follow");
        let mut follower = Follower::new(&dir);
        assert_eq!(follower.poll().expect("no log yet"), Log::default());
        record(&dir, &event(1));
        assert_eq!(texts(&follower.poll().expect("poll")), ["event 1"]);
        assert_eq!(follower.poll().expect("poll"), Log::default());
        let mut file = OpenOptions::new()
            .append(true)
            .open(path(&dir))
            .expect("log");
        file.write_all(b"{\"at\": 7, \"kind\"")
            .expect("half a line");
        assert_eq!(follower.poll().expect("poll"), Log::default());
        file.write_all(b": \"vrrp\", \"text\": \"event 2\"}\n")
            .expect("the rest");
        assert_eq!(texts(&follower.poll().expect("poll")), ["event 2"]);
        record(&dir, &event(3));
        std::fs::rename(path(&dir), rotated_path(&dir)).expect("rotate");
        record(&dir, &event(4));
        assert_eq!(
            texts(&follower.poll().expect("poll")),
            ["event 3", "event 4"]
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
