//! The plan as a reviewer reads it in a terminal: Terraform's layout, attribute
//! diffs, multi-line strings diffed line by line, secrets redacted.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use infra_core::Value;
use infra_core::plan::{Action, Plan, PlanMode, ResourceChange};

use super::{Paint, action_symbol, change_phrase, reason_phrase, summary_line};

pub fn plan(plan: &Plan, paint: Paint) -> String {
    let mut text = String::new();
    plan_in_parts(plan, paint, &mut |part| text.push_str(part));
    text
}

/// Prints the plan to standard output part by part, as [`plan`] renders it.
pub fn print_plan(plan: &Plan, paint: Paint) {
    use std::io::Write as _;
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    // A closed standard output (`infra plan | head`) ends the printing, as it
    // ends every other printer of a command; the plan itself is unaffected.
    let mut open = true;
    plan_in_parts(plan, paint, &mut |part| open = open && stdout.write_all(part.as_bytes()).is_ok());
    let _ = stdout.flush();
}

/// The plan's text handed to `emit` a resource at a time, so that a large plan
/// is never held whole as text (100,000 resources make 32 MB of it).
pub fn plan_in_parts(plan: &Plan, paint: Paint, emit: &mut dyn FnMut(&str)) {
    let mut out = String::new();
    plan_parts(&mut out, plan, paint, emit);
    emit(&out);
}

fn plan_parts(out: &mut String, plan: &Plan, paint: Paint, emit: &mut dyn FnMut(&str)) {
    drift(out, plan, paint);
    if !plan.has_changes() {
        out.push_str(&paint.green("No changes."));
        out.push_str(match plan.mode {
            PlanMode::Normal => " Your infrastructure matches the configuration.\n",
            PlanMode::Destroy => " No objects need to be destroyed.\n",
            PlanMode::RefreshOnly => " The real world still matches the recorded state.\n",
        });
        return;
    }
    moves_and_imports(out, plan, paint);
    if plan.mode == PlanMode::RefreshOnly {
        out.push_str(
            "This is a refresh-only plan: `infra apply -refresh-only` would record what was found in state. No \
             resource would be created, changed or destroyed.\n",
        );
        output_changes(out, plan, paint);
        return;
    }
    let changes: Vec<&ResourceChange> = plan.changes.iter().filter(|c| c.action != Action::NoOp).collect();
    if !changes.is_empty() {
        out.push_str("infra will perform the following actions:\n\n");
        for change in &changes {
            let _ = writeln!(out, "  # {} {}", paint.bold(&change.address.to_string()), change_phrase(change));
            for remark in reason_phrase(change).into_iter().chain(change.note.clone()) {
                let _ = writeln!(out, "  # ({remark})");
            }
            resource_body(out, change, action_symbol(change), paint);
            out.push('\n');
            emit(out);
            out.clear();
        }
    }
    if !changes.is_empty() || !plan.moved.is_empty() || !plan.imports.is_empty() {
        out.push_str(&paint.bold(&summary_line(plan)));
        out.push('\n');
    }
    for warning in &plan.warnings {
        let _ = write!(out, "\n{} {}: {}\n", paint.yellow("Warning:"), warning.address, warning.message);
    }
    output_changes(out, plan, paint);
}

/// What changed outside infra since the last apply, first, as Terraform shows it.
fn drift(out: &mut String, plan: &Plan, paint: Paint) {
    if plan.drift.is_empty() {
        return;
    }
    out.push_str(&paint.bold("Note: Objects have changed outside of infra"));
    out.push_str("\n\ninfra detected the following changes made outside of infra since the last apply:\n\n");
    for drift in &plan.drift {
        let (symbol, phrase) = match &drift.actual {
            None => ("-", "has been deleted"),
            Some(_) => ("~", "has changed"),
        };
        let change = ResourceChange {
            address: drift.address.clone(),
            provider: infra_core::ProviderKey::new(""),
            action: if drift.actual.is_some() { Action::Update } else { Action::Delete },
            before: Some(drift.recorded.clone()),
            after: drift.actual.clone(),
            replace_paths: Vec::new(),
            reason: None,
            note: None,
            dependencies: Vec::new(),
            create_before_destroy: false,
        };
        let _ = writeln!(out, "  # {} {phrase}", paint.bold(&drift.address.to_string()));
        resource_body(out, &change, symbol, paint);
        out.push('\n');
    }
}

fn moves_and_imports(out: &mut String, plan: &Plan, paint: Paint) {
    for import in &plan.imports {
        let _ = writeln!(out, "  # {} will be imported (id {:?})", paint.bold(&import.address.to_string()), import.id);
    }
    for moved in &plan.moved {
        let (from, to) = (paint.bold(&moved.from.to_string()), paint.bold(&moved.to.to_string()));
        let _ = writeln!(out, "  # {from} has moved to {to}");
    }
    if !plan.moved.is_empty() || !plan.imports.is_empty() {
        out.push('\n');
    }
}

fn output_changes(out: &mut String, plan: &Plan, paint: Paint) {
    let changed: Vec<_> = plan.outputs.iter().filter(|o| o.before != o.after).collect();
    if changed.is_empty() {
        return;
    }
    out.push_str("\nChanges to Outputs:\n");
    let width = changed.iter().map(|o| o.name.len()).max().unwrap_or(0);
    for o in changed {
        let name = format!("{:<width$}", o.name);
        let line = match (&o.before, &o.after) {
            (None, Some(after)) => format!("  {} {name} = {}", paint.green("+"), inline(after)),
            (Some(before), None) => {
                format!("  {} {name} = {} -> null", paint.red("-"), inline(before))
            }
            (Some(before), Some(after)) => {
                format!("  {} {name} = {} -> {}", paint.yellow("~"), inline(before), inline(after))
            }
            (None, None) => continue,
        };
        out.push_str(&line);
        out.push('\n');
    }
}

fn colored(symbol: &str, paint: Paint) -> String {
    match symbol {
        "+" => paint.green("+"),
        "-" => paint.red("-"),
        "~" => paint.yellow("~"),
        "-/+" | "+/-" => paint.yellow(symbol),
        other => other.to_string(),
    }
}

fn resource_body(out: &mut String, change: &ResourceChange, symbol: &str, paint: Paint) {
    let address = &change.address;
    let _ = writeln!(out, "{:>3} {} \"{}\" {{", colored(symbol, paint), address.kind, address.name);
    let empty = Value::Object(Default::default());
    let before = change.before.as_ref().unwrap_or(&empty);
    let after = change.after.as_ref().unwrap_or(&empty);
    let mode = match change.action {
        Action::Create => Side::Added,
        Action::Delete => Side::Removed,
        _ => Side::Both,
    };
    object_diff(out, before, after, mode, 6, &change.replace_paths, paint);
    out.push_str("    }\n");
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Added,
    Removed,
    Both,
}

fn object_diff(
    out: &mut String,
    before: &Value,
    after: &Value,
    side: Side,
    indent: usize,
    forces: &[String],
    paint: Paint,
) {
    let empty = Default::default();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let keys: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    let shown: Vec<&String> = keys
        .iter()
        .copied()
        .filter(|k| match side {
            Side::Added => a.get(*k).is_some_and(|v| !v.is_null()),
            Side::Removed => b.get(*k).is_some_and(|v| !v.is_null()),
            Side::Both => !equal(b.get(*k), a.get(*k)),
        })
        .collect();
    let width = shown.iter().map(|k| k.len()).max().unwrap_or(0);
    let pad = " ".repeat(indent);
    for k in &shown {
        let (bv, av) = (b.get(*k).unwrap_or(&Value::Null), a.get(*k).unwrap_or(&Value::Null));
        let name = format!("{k:<width$}");
        let forced = if forces.iter().any(|f| f == *k) { paint.red(" # forces replacement") } else { String::new() };
        match side {
            Side::Added => {
                let _ = writeln!(out, "{pad}{} {name} = {}", paint.green("+"), block(av, indent));
            }
            Side::Removed => {
                let _ = writeln!(out, "{pad}{} {name} = {} -> null", paint.red("-"), block(bv, indent));
            }
            Side::Both if bv.is_null() => {
                let _ = writeln!(out, "{pad}{} {name} = {}{forced}", paint.green("+"), block(av, indent));
            }
            Side::Both if av.is_null() => {
                let _ = writeln!(out, "{pad}{} {name} = {} -> null{forced}", paint.red("-"), block(bv, indent));
            }
            Side::Both => {
                let _ = write!(out, "{pad}{} {name} = ", paint.yellow("~"));
                changed_value(out, bv, av, indent, paint);
                out.push_str(&forced);
                out.push('\n');
            }
        }
    }
    let hidden = keys.len() - shown.len();
    if side == Side::Both && hidden > 0 {
        let noun = if hidden == 1 { "attribute" } else { "attributes" };
        let _ = writeln!(out, "{pad}  {}", paint.dim(&format!("# ({hidden} unchanged {noun} hidden)")));
    }
}

fn changed_value(out: &mut String, before: &Value, after: &Value, indent: usize, paint: Paint) {
    match (before, after) {
        (Value::String(b), Value::String(a)) if b.contains('\n') || a.contains('\n') => {
            let pad = " ".repeat(indent + 4);
            out.push_str("<<-EOT\n");
            let diff = similar::TextDiff::from_lines(b.as_str(), a.as_str());
            for change in diff.iter_all_changes() {
                let line = change.value().trim_end_matches('\n');
                let rendered = match change.tag() {
                    similar::ChangeTag::Equal => format!("{pad}  {line}"),
                    similar::ChangeTag::Delete => format!("{pad}{} {line}", paint.red("-")),
                    similar::ChangeTag::Insert => format!("{pad}{} {line}", paint.green("+")),
                };
                out.push_str(&rendered);
                out.push('\n');
            }
            let _ = write!(out, "{}EOT", " ".repeat(indent + 2));
        }
        (Value::List(b), Value::List(a)) if element_wise(b, a) => list_diff(out, b, a, indent, paint),
        // What a long list becomes is told elsewhere in the plan; its old elements are noise here.
        (Value::List(b), Value::Unknown) if b.len() > 3 => {
            let _ = write!(out, "[{} elements] -> {}", b.len(), inline(after));
        }
        (Value::Object(_), Value::Object(_)) => {
            out.push_str("{\n");
            object_diff(out, before, after, Side::Both, indent + 4, &[], paint);
            let _ = write!(out, "{}}}", " ".repeat(indent + 2));
        }
        _ => {
            let _ = write!(out, "{} -> {}", inline(before), inline(after));
        }
    }
}

/// Lists of objects (firewall rules, say) and long lists read best one element
/// a line, so a reviewer sees which elements were added, removed or changed.
fn element_wise(before: &[Value], after: &[Value]) -> bool {
    let objects = before.iter().chain(after).any(|v| matches!(v, Value::Object(_)));
    objects || before.len() > 3 || after.len() > 3
}

/// One element a line, in order: kept ones plain, removed `-`, added `+` (a
/// changed element is a removal and an addition in the same place). In a long
/// list only the changes and two elements around each are shown.
fn list_diff(out: &mut String, before: &[Value], after: &[Value], indent: usize, paint: Paint) {
    let pad = " ".repeat(indent + 4);
    let old: Vec<String> = before.iter().map(inline).collect();
    let new: Vec<String> = after.iter().map(inline).collect();
    let ops = similar::capture_diff_slices(similar::Algorithm::Myers, &old, &new);
    let groups = if old.len().max(new.len()) > 8 { similar::group_diff_ops(ops, 2) } else { vec![ops] };
    let shown: usize = groups.iter().flatten().map(|op| op.old_range().len().max(op.new_range().len())).sum();
    out.push_str("[\n");
    for (i, group) in groups.iter().enumerate() {
        if i > 0 {
            let _ = writeln!(out, "{pad}  {}", paint.dim("# ..."));
        }
        for change in group.iter().flat_map(|op| op.iter_changes(&old, &new)) {
            let line = change.value();
            let _ = match change.tag() {
                similar::ChangeTag::Equal => writeln!(out, "{pad}  {line},"),
                similar::ChangeTag::Delete => writeln!(out, "{pad}{} {line},", paint.red("-")),
                similar::ChangeTag::Insert => writeln!(out, "{pad}{} {line},", paint.green("+")),
            };
        }
    }
    let hidden = old.len().max(new.len()).saturating_sub(shown);
    if hidden > 0 {
        let _ = writeln!(out, "{pad}  {}", paint.dim(&format!("# ({hidden} unchanged elements hidden)")));
    }
    let _ = write!(out, "{}]", " ".repeat(indent + 2));
}

pub(crate) fn equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    let bare = |v: Option<&Value>| v.map(|v| v.unmark().0).unwrap_or(Value::Null);
    let (a_sensitive, b_sensitive) =
        (a.is_some_and(Value::contains_sensitive), b.is_some_and(Value::contains_sensitive));
    bare(a) == bare(b) && a_sensitive == b_sensitive
}

/// One-line rendering: strings quoted, secrets and unknowns named.
pub fn inline(v: &Value) -> String {
    match v {
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Sensitive(_) => "(sensitive value)".into(),
        Value::Unknown => "(known after apply)".into(),
        Value::List(items) => format!("[{}]", items.iter().map(inline).collect::<Vec<_>>().join(", ")),
        // Unset optional fields are noise in a one-line object.
        Value::Object(map) if map.values().all(Value::is_null) => "{}".into(),
        // A named element (a firewall rule) reads best with its name first.
        Value::Object(map) => format!(
            "{{ {} }}",
            map.iter()
                .filter(|(k, _)| *k == "name")
                .chain(map.iter().filter(|(k, _)| *k != "name"))
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k} = {}", inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// A value that may span lines: multi-line strings as heredocs.
fn block(v: &Value, indent: usize) -> String {
    match v {
        Value::String(s) if s.contains('\n') => {
            let pad = " ".repeat(indent + 4);
            let mut out = String::from("<<-EOT\n");
            for line in s.lines() {
                let _ = writeln!(out, "{pad}{line}");
            }
            let _ = write!(out, "{}EOT", " ".repeat(indent + 2));
            out
        }
        Value::List(items) if element_wise(items, &[]) => {
            let pad = " ".repeat(indent + 4);
            let mut out = String::from("[\n");
            for item in items {
                let _ = writeln!(out, "{pad}{},", inline(item));
            }
            let _ = write!(out, "{}]", " ".repeat(indent + 2));
            out
        }
        other => inline(other),
    }
}

/// `infra show` without a plan: every resource in state, secrets redacted.
/// `infra rollback -list`: the kept revisions, newest first, each with the
/// settings it would change (names only: values may be secret).
pub fn revisions(address: &infra_core::ResourceAddress, revisions: &[infra_engine::rollback::Revision]) -> String {
    if revisions.is_empty() {
        return format!("{address} keeps no earlier revision yet: one is kept each time an apply changes it.\n");
    }
    let mut out = format!("Earlier revisions of {address}, newest first (infra rollback -to N {address}):\n");
    for r in revisions {
        let differs = if r.differs.is_empty() { "the same settings".to_string() } else { r.differs.join(", ") };
        let _ = writeln!(out, "  {}  differs in: {differs}", r.number);
    }
    out
}

pub fn state(state: &infra_core::state::State, paint: Paint) -> String {
    if state.resources.is_empty() {
        return "The state is empty: no resources are managed.\n".into();
    }
    let mut out = String::new();
    for (address, r) in &state.resources {
        let _ = writeln!(out, "# {}:", paint.bold(&address.to_string()));
        let _ = writeln!(out, "{} \"{}\" {{", address.kind, address.name);
        if let Some(map) = r.attributes.as_object() {
            let width = map.keys().map(String::len).max().unwrap_or(0);
            for (k, v) in map.iter().filter(|(_, v)| !v.is_null()) {
                let _ = writeln!(out, "    {k:<width$} = {}", block(v, 2));
            }
        }
        out.push_str("}\n\n");
    }
    if !state.outputs.is_empty() {
        out.push_str("Outputs:\n\n");
        for (name, v) in &state.outputs {
            let _ = writeln!(out, "{name} = {}", inline(v));
        }
    }
    out
}
