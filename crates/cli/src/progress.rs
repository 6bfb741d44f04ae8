//! Apply progress: one line per finished operation with its elapsed time, on a
//! terminal a spinner per running operation (indicatif), and at the end a
//! recap per machine, as Ansible's play recap gives one per host.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use infra_core::ResourceAddress;
use infra_core::plan::Action;
use infra_engine::{Event, Observer};

use crate::render::Paint;

pub struct Progress {
    bars: Option<MultiProgress>,
    running: Mutex<HashMap<ResourceAddress, ProgressBar>>,
    by_location: Mutex<BTreeMap<String, Tally>>,
    paint: Paint,
}

enum Outcome {
    Done,
    Failed(String),
    Skipped,
}

/// What happened on one machine.
#[derive(Default)]
struct Tally {
    done: usize,
    failed: usize,
    skipped: usize,
    first_error: Option<String>,
}

impl Progress {
    pub fn new(interactive: bool, paint: Paint) -> Progress {
        Progress {
            bars: interactive.then(MultiProgress::new),
            running: Mutex::new(HashMap::new()),
            by_location: Mutex::new(BTreeMap::new()),
            paint,
        }
    }

    /// One line per machine the operations ran on, or nothing when no
    /// provider named one.
    pub fn recap(&self) -> String {
        let Ok(by_location) = self.by_location.lock() else { return String::new() };
        if by_location.is_empty() {
            return String::new();
        }
        let width = by_location.keys().map(|l| l.chars().count()).max().unwrap_or(0);
        let mut text = String::from("\nBy machine:\n");
        for (location, tally) in by_location.iter() {
            let skipped = if tally.skipped > 0 { format!(", {} not attempted", tally.skipped) } else { String::new() };
            let line = match &tally.first_error {
                None => format!("  {location:width$}  {} done{skipped}", tally.done),
                Some(error) => self.paint.red(&format!(
                    "  {location:width$}  {} done, {} failed{skipped}: {}",
                    tally.done,
                    tally.failed,
                    error.lines().next().unwrap_or_default()
                )),
            };
            text.push_str(&line);
            text.push('\n');
        }
        text
    }

    fn count(&self, location: String, outcome: Outcome) {
        let Ok(mut by_location) = self.by_location.lock() else { return };
        let tally = by_location.entry(location).or_default();
        match outcome {
            Outcome::Done => tally.done += 1,
            Outcome::Skipped => tally.skipped += 1,
            Outcome::Failed(e) => {
                tally.failed += 1;
                tally.first_error.get_or_insert(e);
            }
        }
    }

    fn line(&self, text: String) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(text);
            }
            None => println!("{text}"),
        }
    }
}

fn verbs(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::Create => ("Creating", "Creation complete"),
        Action::Update => ("Modifying", "Modifications complete"),
        Action::Replace => ("Replacing", "Replacement complete"),
        Action::Delete => ("Destroying", "Destruction complete"),
        Action::NoOp => ("Reading", "Read complete"),
    }
}

fn seconds(d: Duration) -> String {
    if d.as_secs() >= 60 { format!("{}m{}s", d.as_secs() / 60, d.as_secs() % 60) } else { format!("{}s", d.as_secs()) }
}

impl Observer for Progress {
    fn event(&self, event: Event) {
        match event {
            Event::Skipped { location, .. } => {
                if let Some(location) = location {
                    self.count(location, Outcome::Skipped);
                }
            }
            Event::Started { address, action } => {
                let (doing, _) = verbs(action);
                match &self.bars {
                    Some(bars) => {
                        let bar = bars.add(ProgressBar::new_spinner());
                        bar.set_style(
                            ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        bar.set_message(format!("{address}: {doing}..."));
                        bar.enable_steady_tick(Duration::from_millis(120));
                        if let Ok(mut running) = self.running.lock() {
                            running.insert(address, bar);
                        }
                    }
                    None => self.line(format!("{address}: {doing}...")),
                }
            }
            Event::Finished { address, action, elapsed, error, location } => {
                if let Some(location) = location {
                    self.count(location, error.clone().map_or(Outcome::Done, Outcome::Failed));
                }
                if let Some(bar) = self.running.lock().ok().and_then(|mut r| r.remove(&address)) {
                    bar.finish_and_clear();
                }
                let (_, done) = verbs(action);
                let text = match error {
                    None => format!("{address}: {done} after {}", seconds(elapsed)),
                    Some(_) => self.paint.red(&format!("{address}: failed after {}", seconds(elapsed))),
                };
                self.line(text);
            }
        }
    }
}
