//! The plan as a pull-request comment: a summary table, destroys and
//! replacements flagged and listed first, one collapsible diff per resource.

use std::fmt::Write as _;

use infra_core::plan::{Action, Plan};

use super::{Paint, action_phrase, review_order, summary_line};

pub fn plan(plan: &Plan) -> String {
    let mut out = String::from("## infra plan\n\n");
    let s = plan.summary();
    if !plan.has_changes() {
        out.push_str("**No changes.** The infrastructure matches the configuration.\n");
        return out;
    }
    out.push_str("| Add | Change | Destroy |\n|---:|---:|---:|\n");
    let _ = writeln!(out, "| {} | {} | {} |\n", s.add, s.change, s.destroy);
    let dangerous: Vec<_> =
        plan.changes.iter().filter(|c| matches!(c.action, Action::Delete | Action::Replace)).collect();
    if !dangerous.is_empty() {
        out.push_str("> [!WARNING]\n> This plan destroys or replaces resources:\n");
        for c in &dangerous {
            let _ = writeln!(out, "> - `{}` {}", c.address, action_phrase(c.action));
        }
        out.push('\n');
    }
    if !plan.warnings.is_empty() {
        out.push_str("> [!CAUTION]\n");
        for w in &plan.warnings {
            let _ = writeln!(out, "> - `{}` {}", w.address, w.message);
        }
        out.push('\n');
    }
    if !plan.drift.is_empty() {
        let _ =
            writeln!(out, "**Drift:** {} resource(s) changed outside infra since the last apply.\n", plan.drift.len());
    }
    for change in review_order(&plan.changes) {
        let marker = match change.action {
            Action::Delete => "🔴 destroy",
            Action::Replace => "🟠 replace",
            Action::Update => "🟡 update",
            _ => "🟢 create",
        };
        let _ = writeln!(out, "<details><summary>{marker} <code>{}</code></summary>\n", change.address);
        out.push_str("```diff\n");
        let single = Plan { changes: vec![change.clone()], drift: Vec::new(), outputs: Vec::new(), ..Plan::default() };
        let body = super::human::plan(&single, Paint { enabled: false });
        // A resource created or destroyed is all added or all removed, its
        // multi-line values' continuation lines included.
        let whole = match change.action {
            Action::Create => Some('+'),
            Action::Delete => Some('-'),
            _ => None,
        };
        for line in
            body.lines().filter(|l| !l.starts_with("infra will") && !l.starts_with("Plan:") && !l.trim().is_empty())
        {
            let trimmed = line.trim_start();
            let line = match whole {
                Some(c) if line.starts_with(' ') && !trimmed.starts_with(['+', '-', '~', '#']) => {
                    format!("{c}{}", &line[1..])
                }
                _ => diff_line(line),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str("```\n\n</details>\n\n");
    }
    let _ = writeln!(out, "**{}**", summary_line(plan));
    out
}

/// GitHub colours a `diff` block by the first character: move the change
/// symbol to the front of the line.
fn diff_line(line: &str) -> String {
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    match trimmed.chars().next() {
        Some(c @ ('+' | '-' | '~')) if !trimmed.starts_with("-/+") && !trimmed.starts_with("+/-") => {
            let c = if c == '~' { '!' } else { c };
            format!("{c}{}{}", " ".repeat(indent.saturating_sub(1)), &trimmed[1..])
        }
        _ => line.to_string(),
    }
}
