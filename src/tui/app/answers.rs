//! The engine's answers: each arm of `update` that an [`Effect`] asked for
//! comes back here, clears what is busy, and says how it went.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{App, Busy, Effect, Overlay, names};
use crate::config::{ConfigFile, Diagnostic};
use crate::store::Saved;
use crate::tui::Looks;
use crate::tui::engine::{
    Applied, Diff, Directors, Failure, FailureCause, ImportPreview, Live, Loaded, NewVersion,
    PeerComparison, PeerSync, PlanPreview, Refusal, Request,
};
use crate::tui::keymap::Command;

impl App {
    /// A validation; one of buffers older than those shown is ignored.
    pub(super) fn checked(
        &mut self,
        generation: u64,
        diagnostics: Vec<Diagnostic>,
        directors: Directors,
    ) -> Vec<Effect> {
        if self
            .checked_generation
            .is_none_or(|shown| generation >= shown)
        {
            self.checked_generation = Some(generation);
            self.diagnostics = diagnostics;
            (self.directors, self.servers) = (directors.names, directors.servers);
        }
        Vec::new()
    }

    pub(super) fn observed(&mut self, live: Live) -> Vec<Effect> {
        self.observing = false;
        self.rates.record(live.services.as_deref().ok());
        self.live = Some(live);
        Vec::new()
    }

    pub(super) fn planned(&mut self, result: Result<PlanPreview, Failure>) -> Vec<Effect> {
        self.busy = None;
        match result {
            Ok(preview) if preview.operations.is_empty() && !preview.changes_vrrp => {
                self.note("no changes: the kernel already runs this configuration");
            }
            Ok(preview) => self.overlay = Some(Overlay::Plan { preview, scroll: 0 }),
            Err(failure) => self.failed("Cannot apply", failure),
        }
        Vec::new()
    }

    /// A plan or an apply that did not happen. Refused for want of privilege,
    /// the title says what to do: nothing this console applies can work until
    /// it runs as root.
    fn failed(&mut self, title: &str, failure: Failure) {
        let title = match failure.cause {
            FailureCause::NotPermitted => "Not permitted: run the console as root",
            FailureCause::Unavailable | FailureCause::Other => title,
        };
        self.show_error(title, failure.text);
    }

    pub(super) fn applied(
        &mut self,
        result: Result<Applied, Failure>,
        now: Instant,
    ) -> Vec<Effect> {
        self.busy = None;
        match result {
            Ok(applied) => {
                self.running = Some(applied.running);
                self.compare(&ConfigFile::ALL);
                match applied.confirm_within {
                    Some(seconds) => {
                        self.confirm_deadline = Some(now + Duration::from_secs(seconds));
                        self.confirm_left = Some(seconds);
                        let key = self
                            .keymap
                            .keys_for(Command::Confirm)
                            .unwrap_or_else(|| ":confirm".to_owned());
                        self.note(&format!(
                            "applied {} change(s): confirm within {seconds} s ({key}) or they are undone",
                            applied.changes
                        ));
                    }
                    None => self.note(&format!(
                        "applied {} change(s), not guarded by a confirm timeout",
                        applied.changes
                    )),
                }
            }
            Err(failure) => self.failed("Apply failed", failure),
        }
        // The history marks the version that runs.
        let mut effects = self.refresh_live();
        effects.push(Effect::Engine(Request::History));
        effects
    }

    pub(super) fn saved(&mut self, result: Result<Saved, Refusal>) -> Vec<Effect> {
        self.busy = None;
        match result {
            Ok(saved) => {
                (self.saved, self.saved_version) = (saved.files, saved.version);
                self.peer_sync = None;
                self.compare(&ConfigFile::ALL);
                self.note(&format!(
                    "saved as version {} in {}",
                    saved.version, self.settings.config_dir
                ));
                return vec![Effect::Engine(Request::History)];
            }
            Err(refusal) => self.refused("Save failed", refusal),
        }
        Vec::new()
    }

    pub(super) fn confirmed(&mut self, result: Result<String, String>) -> Vec<Effect> {
        match result {
            Ok(text) => {
                (self.confirm_deadline, self.confirm_left) = (None, None);
                self.note(&text);
            }
            Err(error) => self.show_error("Confirm failed", error),
        }
        Vec::new()
    }

    pub(super) fn reloaded(&mut self, result: Result<Loaded, String>) -> Vec<Effect> {
        self.busy = None;
        match result {
            Ok(loaded) => {
                self.load_buffers(loaded);
                self.peer_sync = None;
                self.note("reloaded the saved files");
                vec![self.check_now(), Effect::Engine(Request::History)]
            }
            Err(error) => {
                self.show_error("Reload failed", error);
                Vec::new()
            }
        }
    }

    pub(super) fn diffed(&mut self, result: Result<Diff, String>) -> Vec<Effect> {
        match result {
            Ok(diff) => self.overlay = Some(Overlay::Diff { diff, scroll: 0 }),
            Err(error) => self.show_error("No diff", error),
        }
        Vec::new()
    }

    /// What an import would change: shown, to be answered yes or no.
    pub(super) fn import_previewed(
        &mut self,
        result: Result<ImportPreview, Refusal>,
    ) -> Vec<Effect> {
        self.busy = None;
        match result {
            Ok(preview) => {
                self.overlay = Some(Overlay::Import {
                    preview,
                    discarded: if self.unsaved.is_empty() {
                        String::new()
                    } else {
                        names(&self.unsaved)
                    },
                    scroll: 0,
                });
            }
            Err(refusal) => self.refused("Import refused", refusal),
        }
        Vec::new()
    }

    /// A restore or an import made a new saved version, or was refused.
    pub(super) fn replaced(&mut self, result: Result<NewVersion, Refusal>) -> Vec<Effect> {
        let title = if self.busy == Some(Busy::Importing) {
            "Import refused"
        } else {
            "Restore refused"
        };
        self.busy = None;
        match result {
            Ok(NewVersion { meta, loaded }) => {
                self.load_buffers(loaded);
                self.peer_sync = None;
                self.selected_version = Some(meta.number);
                let apply = self.keymap.keys_for(Command::Apply).unwrap_or_default();
                self.note(&format!(
                    "saved version {}: {}; not applied ({apply} applies it)",
                    meta.number, meta.summary
                ));
                vec![self.check_now(), Effect::Engine(Request::History)]
            }
            Err(refusal) => {
                self.refused(title, refusal);
                Vec::new()
            }
        }
    }

    pub(super) fn exported(&mut self, result: Result<(u64, PathBuf), String>) -> Vec<Effect> {
        self.busy = None;
        match result {
            Ok((version, path)) => {
                let edits = if self.unsaved.is_empty() {
                    ""
                } else {
                    " (as saved: without the unsaved edits)"
                };
                self.note(&format!(
                    "exported version {version}{edits} to {}",
                    path.display()
                ));
            }
            Err(error) => self.show_error("Export failed", error),
        }
        Vec::new()
    }

    pub(super) fn looks_changed(&mut self, result: Result<Looks, String>) -> Vec<Effect> {
        match result {
            Ok(looks) => {
                (self.keymap, self.theme) = (looks.keymap, looks.theme);
                let settings = &mut self.settings;
                (settings.stored, settings.theme, settings.keymap) =
                    (looks.settings, looks.theme_choice, looks.keymap_choice);
                let note = format!(
                    "kept in lbconsole.toml: theme {}, keymap {}, confirm timeout {} s",
                    settings.theme.name, settings.keymap.name, settings.stored.confirm_timeout
                );
                self.note(&note);
            }
            Err(error) => self.show_error("Setting not changed", error),
        }
        Vec::new()
    }

    /// The peer's files compared with this box's: the diff to confirm, or
    /// nothing to do.
    pub(super) fn peer_compared(&mut self, result: Result<PeerComparison, String>) -> Vec<Effect> {
        self.busy = None;
        self.peer_sync = Some(match result {
            Ok(comparison) => {
                if comparison.diff.is_empty() {
                    self.note(&format!(
                        "nothing to sync: {} has this box's lvs.conf and flows.conf (its version {})",
                        comparison.peer, comparison.version
                    ));
                } else {
                    let unsent = self
                        .unsaved
                        .iter()
                        .copied()
                        .filter(|&file| file != ConfigFile::Network)
                        .collect();
                    self.overlay = Some(Overlay::PeerSync {
                        comparison: comparison.clone(),
                        unsent,
                        scroll: 0,
                    });
                }
                PeerSync::Compared(comparison)
            }
            Err(error) => {
                self.warn(&format!("no sync: {error}"));
                PeerSync::Failed(error)
            }
        });
        Vec::new()
    }

    /// `peer` saved this box's files, or refused them.
    pub(super) fn peer_synced(
        &mut self,
        peer: String,
        result: Result<String, String>,
    ) -> Vec<Effect> {
        self.busy = None;
        self.peer_sync = Some(match result {
            Ok(report) => {
                self.note(&format!(
                    "{peer}: {}",
                    report.lines().next().unwrap_or_default()
                ));
                PeerSync::Synced { peer, report }
            }
            Err(error) => {
                self.show_error(&format!("{peer} refused the sync"), error.clone());
                PeerSync::Failed(error)
            }
        });
        Vec::new()
    }

    fn refused(&mut self, title: &str, refusal: Refusal) {
        match refusal {
            Refusal::Stale(text) => self.overlay = Some(Overlay::Stale { text }),
            Refusal::Failed(text) => self.show_error(title, text),
        }
    }
}
