//! Rendering plans, state and values for people (human, Markdown) and programs (JSON).

pub mod human;
pub mod json;
pub mod markdown;

use infra_core::ResourceAddress;
use infra_core::plan::{Action, ChangeReason, ResourceChange};

/// ANSI colours, or nothing when output is not a terminal.
#[derive(Clone, Copy)]
pub struct Paint {
    pub enabled: bool,
}

impl Paint {
    fn wrap(self, code: &str, text: &str) -> String {
        if self.enabled { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
    pub fn green(self, t: &str) -> String {
        self.wrap("32", t)
    }
    pub fn yellow(self, t: &str) -> String {
        self.wrap("33", t)
    }
    pub fn red(self, t: &str) -> String {
        self.wrap("31", t)
    }
    pub fn bold(self, t: &str) -> String {
        self.wrap("1", t)
    }
    pub fn dim(self, t: &str) -> String {
        self.wrap("2", t)
    }
}

/// Colour for standard output, as the flags, `NO_COLOR` and the terminal allow.
pub fn paint(global: &crate::args::Global) -> Paint {
    use std::io::IsTerminal;
    Paint { enabled: crate::report::color_enabled(global.no_color, std::io::stdout().is_terminal()) }
}

pub fn action_symbol(change: &ResourceChange) -> &'static str {
    match change.action {
        Action::NoOp => " ",
        Action::Create => "+",
        Action::Update => "~",
        Action::Replace if change.create_before_destroy => "+/-",
        Action::Replace => "-/+",
        Action::Delete => "-",
    }
}

/// What happens to one resource instance, in a plan's words.
pub fn change_phrase(change: &ResourceChange) -> &'static str {
    match change.reason {
        Some(ChangeReason::Abandoned) => "will be forgotten (the object stays)",
        _ => action_phrase(change.action),
    }
}

fn action_phrase(action: Action) -> &'static str {
    match action {
        Action::NoOp => "is unchanged",
        Action::Create => "will be created",
        Action::Update => "will be updated in place",
        Action::Replace => "must be replaced",
        Action::Delete => "will be destroyed",
    }
}

pub fn reason_phrase(change: &ResourceChange) -> Option<String> {
    Some(match change.reason? {
        ChangeReason::RemovedFromConfig => {
            format!("because {} is not in the configuration", change.address)
        }
        ChangeReason::ModuleInstanceRemoved => {
            let module = ResourceAddress { kind: String::new(), ..change.address.clone() };
            format!("because {module} is not in the configuration")
        }
        ChangeReason::ReplaceRequested => "because -replace asked for it".into(),
        ChangeReason::ProviderConfiguredAtApply => format!(
            "provider `{}` reads values known only after apply: it is configured then, and checks this change then",
            change.provider
        ),
        ChangeReason::ForcedByAttributes => {
            format!("because {} cannot change in place", change.replace_paths.join(", "))
        }
        ChangeReason::GoneOutsideInfra => "because it was deleted outside infra".into(),
        ChangeReason::DestroyRequested => return None,
        ChangeReason::Abandoned => {
            "lifecycle.abandon_on_destroy: infra forgets it and leaves the object as it is".into()
        }
    })
}

/// Destroys and replacements first (they deserve a reviewer's attention), then the rest.
pub fn review_order(changes: &[ResourceChange]) -> Vec<&ResourceChange> {
    let rank = |a: Action| match a {
        Action::Delete => 0,
        Action::Replace => 1,
        Action::Update => 2,
        Action::Create => 3,
        Action::NoOp => 4,
    };
    let mut ordered: Vec<&ResourceChange> = changes.iter().filter(|c| c.action != Action::NoOp).collect();
    ordered.sort_by_key(|c| rank(c.action));
    ordered
}

pub fn summary_line(plan: &infra_core::plan::Plan) -> String {
    let s = plan.summary();
    let imports = match plan.imports.len() {
        0 => String::new(),
        n => format!("{n} to import, "),
    };
    let moved = match (plan.moved.len(), s.forget) {
        (0, 0) => String::new(),
        (0, f) => format!(", {f} to forget"),
        (n, 0) => format!(", {n} moved"),
        (n, f) => format!(", {f} to forget, {n} moved"),
    };
    format!("Plan: {imports}{} to add, {} to change, {} to destroy{moved}.", s.add, s.change, s.destroy)
}
