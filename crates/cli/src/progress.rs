//! Apply progress: one line per finished operation with its elapsed time, and on
//! a terminal a spinner per running operation (indicatif).

use std::collections::HashMap;
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
    paint: Paint,
}

impl Progress {
    pub fn new(interactive: bool, paint: Paint) -> Progress {
        Progress { bars: interactive.then(MultiProgress::new), running: Mutex::new(HashMap::new()), paint }
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
            Event::Finished { address, action, elapsed, error } => {
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
