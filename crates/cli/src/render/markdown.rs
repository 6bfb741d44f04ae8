//! The plan as a pull-request comment: a summary table, destroys and
//! replacements flagged and listed first, one collapsible diff per resource,
//! bounded in size (a GitHub comment holds 65,536 characters): diffs that do
//! not fit are named in a closing note instead, which points at the full plan.

use std::fmt::Write as _;

use infra_core::plan::{Action, Plan, PlanMode, ResourceChange};

use super::{Paint, change_phrase, review_order, summary_line};

/// What fits in one GitHub pull-request comment, with room to spare.
pub const COMMENT_LIMIT: usize = 60_000;

/// The plan in at most `limit` characters (`None`: all of it).
pub fn plan(plan: &Plan, limit: Option<usize>) -> String {
    if plan.mode == PlanMode::RefreshOnly {
        return drift_report(plan);
    }
    let mut out = String::from("## infra plan\n\n");
    let s = plan.summary();
    if !plan.has_changes() {
        out.push_str("**No changes.** The infrastructure matches the configuration.\n");
        return out;
    }
    out.push_str("| Add | Change | Destroy |\n|---:|---:|---:|\n");
    let _ = writeln!(out, "| {} | {} | {} |\n", s.add, s.change, s.destroy);
    let dangerous = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
        .filter(|c| c.reason != Some(infra_core::plan::ChangeReason::Abandoned))
        .map(|c| format!("`{}` {}", c.address, change_phrase(c)));
    list_section(&mut out, "> [!WARNING]\n> This plan destroys or replaces resources:\n", "> - ", dangerous);
    let warnings = plan.warnings.iter().map(|w| format!("`{}` {}", w.address, w.message));
    list_section(&mut out, "> [!CAUTION]\n", "> - ", warnings);
    let imports = plan.imports.iter().map(|i| format!("`{}` from id `{}`", i.address, i.id));
    list_section(&mut out, "**Imported** (existing objects infra will manage from now on):\n\n", "- ", imports);
    let moved = plan.moved.iter().map(|m| format!("`{}` → `{}`", m.from, m.to));
    list_section(&mut out, "**Moved** (the real objects stay; only their addresses change):\n\n", "- ", moved);
    if !plan.drift.is_empty() {
        let _ =
            writeln!(out, "**Drift:** {} resource(s) changed outside infra since the last apply.\n", plan.drift.len());
    }
    let changes = review_order(&plan.changes);
    let footer = format!("**{}**\n", summary_line(plan));
    for (shown, change) in changes.iter().enumerate() {
        let section = resource_section(change);
        if let Some(limit) = limit
            && out.len() + section.len() + footer.len() > limit
        {
            out.push_str(&truncation_note(&changes[shown..], limit - footer.len().min(limit), out.len()));
            break;
        }
        out.push_str(&section);
    }
    out.push_str(&footer);
    out
}

/// A heading and one line per item, or nothing when there are no items.
fn list_section(out: &mut String, heading: &str, bullet: &str, items: impl Iterator<Item = String>) {
    let mut items = items.peekable();
    if items.peek().is_none() {
        return;
    }
    out.push_str(heading);
    for item in items {
        let _ = writeln!(out, "{bullet}{item}");
    }
    out.push('\n');
}

/// `infra drift -format markdown`: what changed outside infra, one diff each.
fn drift_report(plan: &Plan) -> String {
    let mut out = String::from("## infra drift report\n\n");
    if plan.drift.is_empty() {
        out.push_str("**No drift.** The real world matches the recorded state.\n");
        return out;
    }
    let _ = writeln!(
        out,
        "**{} resource(s) changed outside infra** since the last apply. `infra apply -refresh-only` records \
         what was found in state; `infra apply` puts back what the configuration says.\n",
        plan.drift.len()
    );
    for drift in &plan.drift {
        let marker = if drift.actual.is_some() { "🟣 changed" } else { "⚫ deleted" };
        let _ = writeln!(out, "<details><summary>{marker} <code>{}</code></summary>\n", drift.address);
        out.push_str("```diff\n");
        let single = Plan { mode: PlanMode::RefreshOnly, drift: vec![drift.clone()], ..Plan::default() };
        let body = super::human::plan(&single, Paint { enabled: false });
        let resource = body.lines().skip_while(|l| !l.trim_start().starts_with('#')).skip(1);
        for line in resource.take_while(|l| !l.starts_with("This is")).filter(|l| !l.trim().is_empty()) {
            out.push_str(&diff_line(line));
            out.push('\n');
        }
        out.push_str("```\n\n</details>\n\n");
    }
    out
}

/// Names the changes left out (as many as fit) and says where the whole plan is.
fn truncation_note(left_out: &[&ResourceChange], limit: usize, used: usize) -> String {
    let mut note = format!(
        "> [!NOTE]\n> **{} more change(s) not shown**: this comment is limited in size. The full plan is the saved \
         plan file (`infra show -format markdown -full PLANFILE`), attached to this run.\n>\n",
        left_out.len()
    );
    for (i, change) in left_out.iter().enumerate() {
        let line = format!("> - `{}` {}\n", change.address, change_phrase(change));
        if used + note.len() + line.len() + 40 > limit {
            let _ = writeln!(note, "> - … and {} more", left_out.len() - i);
            break;
        }
        note.push_str(&line);
    }
    note.push('\n');
    note
}

/// One resource's collapsible diff.
fn resource_section(change: &ResourceChange) -> String {
    let mut out = String::new();
    let marker = match change.action {
        Action::Delete if change.reason == Some(infra_core::plan::ChangeReason::Abandoned) => "⚪ forget",
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
    for line in body.lines().filter(|l| !l.starts_with("infra will") && !l.starts_with("Plan:") && !l.trim().is_empty())
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
