//! The one-line summary of what a version changed, as `history` lists it:
//! `lvs.conf: +director web2, ~director web; network.conf, flows.conf unchanged`.
//! Pure: sections are compared through the parsed model (so a comment or a
//! re-indented line is not a changed director); a file that does not parse is
//! summarised by its line counts.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::Hasher;

use serde::Serialize;

use crate::config::ConfigFile;
use crate::config::parse::{parse_flows, parse_lvs, parse_network};

use super::ConfigFiles;

/// At most this many sections are named per file; the rest are counted.
const MAX_NAMED: usize = 6;

/// What changed from `old` to `new`, in one line.
pub fn summarize(old: &ConfigFiles, new: &ConfigFiles) -> String {
    let mut changed = Vec::new();
    let mut unchanged = Vec::new();
    for file in ConfigFile::ALL {
        let (a, b) = (old.get(file), new.get(file));
        if a == b {
            unchanged.push(file.file_name());
            continue;
        }
        let what = sections(file, a, b).unwrap_or_else(|| lines(a, b));
        changed.push(format!("{}: {what}", file.file_name()));
    }
    if changed.is_empty() {
        return "no changes".to_owned();
    }
    let mut summary = changed.join("; ");
    if !unchanged.is_empty() {
        summary.push_str(&format!("; {} unchanged", unchanged.join(", ")));
    }
    summary
}

/// `+kind name` for each added section, `-` removed, `~` changed; `None` when
/// either side has syntax errors (their sections cannot be trusted).
fn sections(file: ConfigFile, old: &[u8], new: &[u8]) -> Option<String> {
    let (old, new) = (named_sections(file, old)?, named_sections(file, new)?);
    let (old_names, new_names) = (names(&old), names(&new));
    // A name written twice is compared by its first section.
    let mut old_by_name = HashMap::with_capacity(old.len());
    for (name, fingerprint) in &old {
        old_by_name.entry(name.as_str()).or_insert(fingerprint);
    }
    let (mut added, mut changed) = (Vec::new(), Vec::new());
    for (name, fingerprint) in &new {
        match old_by_name.get(name.as_str()) {
            None => added.push(format!("+{name}")),
            Some(&before) if before != fingerprint => changed.push(format!("~{name}")),
            Some(_) => {}
        }
    }
    let removed = old
        .iter()
        .filter(|(name, _)| !new_names.contains(name.as_str()))
        .map(|(name, _)| format!("-{name}"));
    let mut items: Vec<String> = added.into_iter().chain(changed).chain(removed).collect();
    if in_order(&old, &new_names) != in_order(&new, &old_names) {
        // Order is meaning in flows.conf: the first matching flow wins.
        items.push("order changed".to_owned());
    }
    if items.is_empty() {
        return Some("comments or layout only".to_owned());
    }
    if items.len() > MAX_NAMED {
        let more = items.len() - MAX_NAMED;
        items.truncate(MAX_NAMED);
        items.push(format!("{more} more"));
    }
    Some(items.join(", "))
}

fn names(sections: &[Section]) -> HashSet<&str> {
    sections.iter().map(|(name, _)| name.as_str()).collect()
}

/// The names of `sections` that are also in `other`, in order.
fn in_order<'a>(sections: &'a [Section], other: &HashSet<&str>) -> Vec<&'a str> {
    sections
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| other.contains(name))
        .collect()
}

/// A section's `kind name` and the fingerprint of its meaning.
type Section = (String, u64);

/// Each section with a fingerprint of its meaning. Only the fingerprints are
/// kept, so the two versions are never held parsed at once: a large file's model
/// takes a few times its size.
fn named_sections(file: ConfigFile, bytes: &[u8]) -> Option<Vec<Section>> {
    let clean =
        |diagnostics: &[crate::config::Diagnostic]| !diagnostics.iter().any(|d| d.is_error());
    match file {
        ConfigFile::Network => {
            let (config, diagnostics) = parse_network(bytes);
            clean(&diagnostics).then(|| {
                config
                    .interfaces
                    .iter()
                    .map(|i| (format!("interface {}", i.name.as_str()), fingerprint(i)))
                    .collect()
            })
        }
        ConfigFile::Flows => {
            let (config, diagnostics) = parse_flows(bytes);
            clean(&diagnostics).then(|| {
                config
                    .flows
                    .iter()
                    .map(|f| {
                        let name = format!("{} {}", f.direction.keyword(), f.name.as_str());
                        (name, fingerprint(f))
                    })
                    .collect()
            })
        }
        ConfigFile::Lvs => {
            let (config, diagnostics) = parse_lvs(bytes);
            clean(&diagnostics).then(|| {
                config
                    .directors
                    .iter()
                    .map(|d| (format!("director {}", d.name.as_str()), fingerprint(d)))
                    .collect()
            })
        }
    }
}

/// A hash of the section's JSON, which leaves out where it was written. Two
/// different sections share one with a chance of 2^-64: a summary can afford that.
fn fingerprint<T: Serialize>(section: &T) -> u64 {
    let mut hasher = HashingWriter(DefaultHasher::new());
    // The model always serializes (it has no maps and no floats); were it ever
    // to fail, what was written so far still fingerprints the section.
    let _ = serde_json::to_writer(&mut hasher, section);
    hasher.0.finish()
}

/// Feeds what is written into a hasher, so JSON is hashed without being held.
struct HashingWriter(DefaultHasher);

impl std::io::Write for HashingWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `+A -R lines` from a line-by-line diff, for files that do not parse.
fn lines(old: &[u8], new: &[u8]) -> String {
    let (old, new) = (String::from_utf8_lossy(old), String::from_utf8_lossy(new));
    let diff = similar::TextDiff::from_lines(old.as_ref(), new.as_ref());
    let (mut added, mut removed) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    format!("+{added} -{removed} lines")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(network: &str, flows: &str, lvs: &str) -> ConfigFiles {
        ConfigFiles {
            network: network.into(),
            flows: flows.into(),
            lvs: lvs.into(),
        }
    }

    const WEB: &str = "director web 192.0.2.10:80 TCP\n    server a 198.51.100.1 weight 1\n";

    #[test]
    fn names_added_changed_and_removed_sections_and_the_unchanged_files() {
        let old = files("", "", &format!("{WEB}director mail 192.0.2.11:25 TCP\n"));
        let new = files(
            "",
            "",
            &format!(
                "{}director web2 192.0.2.12:80 TCP\n",
                WEB.replace("weight 1", "weight 5")
            ),
        );
        assert_eq!(
            summarize(&old, &new),
            "lvs.conf: +director web2, ~director web, -director mail; network.conf, flows.conf unchanged"
        );
    }

    #[test]
    fn a_comment_is_layout_and_a_broken_file_counts_lines() {
        let old = files("", "", WEB);
        let new = files(
            "service network eth1\n    bogus\n",
            "",
            &format!("# web\n{WEB}"),
        );
        assert_eq!(
            summarize(&old, &new),
            "network.conf: +2 -0 lines; lvs.conf: comments or layout only; flows.conf unchanged"
        );
        assert_eq!(summarize(&new, &new), "no changes");
    }

    #[test]
    fn swapped_flows_are_an_order_change() {
        let flows = "flow a permit\n    match proto tcp\nflow b deny\n    match\n";
        let swapped = "flow b deny\n    match\nflow a permit\n    match proto tcp\n";
        assert_eq!(
            summarize(&files("", flows, ""), &files("", swapped, "")),
            "flows.conf: order changed; network.conf, lvs.conf unchanged"
        );
    }
}
