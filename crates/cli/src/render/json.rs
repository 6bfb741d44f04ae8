//! The machine-readable plan (`infra plan -format json`), documented in
//! `docs/plan-json.md`. Sensitive values are never written: they appear as
//! null with their paths listed in `*_sensitive`; unknown ones likewise in
//! `after_unknown`.

use infra_core::plan::{Plan, ResourceChange};
use infra_core::{InstanceKey, PathStep, Value};
use serde_json::{Value as Json, json};

pub const FORMAT_VERSION: &str = "1";

fn paths(paths: Vec<Vec<PathStep>>) -> Json {
    Json::Array(
        paths
            .into_iter()
            .map(|p| {
                Json::Array(
                    p.into_iter()
                        .map(|s| match s {
                            PathStep::Key(k) => Json::String(k),
                            PathStep::Index(i) => Json::from(i),
                        })
                        .collect(),
                )
            })
            .collect(),
    )
}

/// JSON with secrets and unknowns blanked out.
pub(crate) fn redacted(v: &Value) -> Json {
    match v {
        Value::Sensitive(_) | Value::Unknown => Json::Null,
        Value::List(items) => Json::Array(items.iter().map(redacted).collect()),
        Value::Object(map) => Json::Object(map.iter().map(|(k, v)| (k.clone(), redacted(v))).collect()),
        other => other.to_json(),
    }
}

fn side(v: Option<&Value>) -> (Json, Json, Json) {
    match v {
        None => (Json::Null, json!([]), json!([])),
        Some(v) => (redacted(v), paths(v.sensitive_paths()), paths(v.unknown_paths())),
    }
}

fn change(c: &ResourceChange) -> Json {
    let (before, before_sensitive, _) = side(c.before.as_ref());
    let (after, after_sensitive, after_unknown) = side(c.after.as_ref());
    let index = match &c.address.key {
        InstanceKey::None => Json::Null,
        InstanceKey::Int(i) => Json::from(*i),
        InstanceKey::Str(s) => Json::String(s.clone()),
    };
    json!({
        "address": c.address.to_string(),
        "module": c.address.module.iter().map(|m| format!("module.{m}")).collect::<Vec<_>>().join("."),
        "type": c.address.kind,
        "name": c.address.name,
        "index": index,
        "provider": c.provider.as_str(),
        "action": c.action,
        "reason": c.reason,
        "note": c.note,
        "replace_paths": c.replace_paths,
        "create_before_destroy": c.create_before_destroy,
        "before": before,
        "after": after,
        "after_unknown": after_unknown,
        "before_sensitive": before_sensitive,
        "after_sensitive": after_sensitive,
    })
}

pub fn plan(plan: &Plan) -> String {
    let drift: Vec<Json> = plan
        .drift
        .iter()
        .map(|d| {
            json!({
                "address": d.address.to_string(),
                "recorded": redacted(&d.recorded),
                "actual": d.actual.as_ref().map(redacted),
                "deleted": d.actual.is_none(),
            })
        })
        .collect();
    let outputs: Vec<Json> = plan
        .outputs
        .iter()
        .map(|o| {
            let sensitive = o.before.as_ref().or(o.after.as_ref()).is_some_and(Value::contains_sensitive);
            json!({
                "name": o.name,
                "before": o.before.as_ref().map(redacted),
                "after": o.after.as_ref().map(redacted),
                "after_unknown": o.after.as_ref().is_some_and(|a| !a.is_wholly_known()),
                "sensitive": sensitive,
                "changed": o.before != o.after,
            })
        })
        .collect();
    let document = json!({
        "format_version": FORMAT_VERSION,
        "mode": plan.mode,
        "lineage": plan.lineage,
        "prior_serial": plan.prior_serial,
        "summary": plan.summary(),
        "has_changes": plan.has_changes(),
        "resource_changes": plan.changes.iter().map(change).collect::<Vec<_>>(),
        "drift": drift,
        "output_changes": outputs,
        "warnings": plan.warnings.iter().map(|w| json!({ "address": w.address.to_string(), "message": w.message })).collect::<Vec<_>>(),
        "imports": plan.imports.iter().map(|i| json!({ "address": i.address.to_string(), "id": i.id })).collect::<Vec<_>>(),
        "moved": plan.moved.iter().map(|m| json!({ "from": m.from.to_string(), "to": m.to.to_string() })).collect::<Vec<_>>(),
    });
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}
