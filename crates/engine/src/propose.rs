//! The generic part of planning one instance: merging configuration over prior
//! state, deciding between update and replace, and checking that apply-time
//! values still match what the plan promised.

use std::collections::BTreeMap;

use infra_core::plan::Action;
use infra_core::{Schema, Value};
use infra_syntax::ast::Ident;

/// The new state the engine proposes before the provider refines it. When the
/// configuration already forces a new object, its computed attributes are
/// unknown, so the provider plans a new object.
pub fn propose(schema: &Schema, prior: Option<&Value>, config: &Value, ignore_changes: &[Ident]) -> Value {
    let get = |v: Option<&Value>, k: &str| v.and_then(|v| v.get(k)).cloned().unwrap_or(Value::Null);
    let mut after = BTreeMap::new();
    for (name, attr) in &schema.attributes {
        let configured = get(Some(config), name);
        let mut value = if attr.computed && configured.is_null() {
            prior.map_or(Value::Unknown, |p| get(Some(p), name))
        } else {
            configured
        };
        if prior.is_some() && ignore_changes.iter().any(|i| i.name == *name) {
            value = get(prior, name);
        }
        after.insert((*name).to_string(), value);
    }
    for name in schema.blocks.keys() {
        let mut value = get(Some(config), name);
        if prior.is_some() && ignore_changes.iter().any(|i| i.name == *name) {
            value = get(prior, name);
        }
        after.insert((*name).to_string(), value);
    }
    let mut proposed = Value::Object(after.into());
    let new_object = prior.is_some_and(|p| !forced(schema, &proposed, p).is_empty());
    let Value::Object(after) = &mut proposed else { return proposed };
    for (name, attr) in &schema.attributes {
        let Some(v) = after.get_mut(*name) else { continue };
        if new_object && attr.computed && get(Some(config), name).is_null() {
            // A new object: everything it computes is unknown again.
            *v = Value::Unknown;
        }
        if attr.sensitive && !v.is_null() {
            *v = std::mem::take(v).sensitive();
        }
    }
    proposed
}

/// The attributes and blocks that cannot change in place and differ between
/// `candidate` and `prior`.
pub fn forced(schema: &Schema, candidate: &Value, prior: &Value) -> Vec<String> {
    let attributes = schema.attributes.iter().map(|(name, a)| (*name, a.force_new));
    let blocks = schema.blocks.iter().map(|(name, b)| (*name, b.force_new));
    attributes
        .chain(blocks)
        .filter(|(name, force_new)| *force_new && Value::differs(candidate.get(name), prior.get(name)))
        .map(|(name, _)| name.to_string())
        .collect()
}

/// Decides replacement on the provider's refined value: a provider may
/// normalise what the user wrote (`"8080:80"` → `"127.0.0.1:8080:80/tcp"`), and
/// only a difference that survives that forces a new object. When none does,
/// computed attributes keep their known values again.
pub fn settle(
    schema: &Schema,
    prior: Option<&Value>,
    proposed: &Value,
    mut planned: Value,
    extra: Vec<String>,
) -> (Value, Vec<String>) {
    let Some(prior) = prior else { return (planned, extra) };
    let mut replace = forced(schema, &planned, prior);
    for e in extra {
        if !replace.contains(&e) {
            replace.push(e);
        }
    }
    if let Value::Object(map) = &mut planned {
        for (name, attr) in schema.attributes.iter().filter(|(_, a)| a.computed) {
            let Some(v) = map.get_mut(*name) else { continue };
            let recorded = prior.get(name).cloned().unwrap_or(Value::Null);
            let engine_made_unknown = proposed.get(name).is_some_and(|p| matches!(p.peel(), Value::Unknown));
            if replace.is_empty() && engine_made_unknown && matches!(v.peel(), Value::Unknown) {
                // Only the engine's guess of a new object made it unknown; a value
                // the provider itself made unknown (content not known yet) stays so.
                *v = recorded;
            } else if !replace.is_empty()
                && attr.read_only
                && !recorded.is_null()
                && same(v, &recorded)
                && proposed.get(name).is_some_and(|p| same(p, v))
            {
                // Carried over from the old object (the provider did not compute
                // it anew): the new object's value is not known yet.
                *v = Value::Unknown;
            }
        }
    }
    (planned, replace)
}

pub fn same(a: &Value, b: &Value) -> bool {
    !Value::differs(Some(a), Some(b))
}

pub fn action(prior: Option<&Value>, planned: &Value, replace: &[String]) -> Action {
    match prior {
        None => Action::Create,
        Some(_) if !replace.is_empty() => Action::Replace,
        Some(p) if same(p, planned) => Action::NoOp,
        Some(_) => Action::Update,
    }
}

/// The first path where a value known in `promised` differs in `actual`.
pub fn first_mismatch(promised: &Value, actual: &Value, path: &mut String) -> Option<String> {
    match (promised.peel(), actual.peel()) {
        (Value::Unknown, _) => None,
        (Value::Object(p), Value::Object(a)) => {
            for (k, pv) in p {
                let len = path.len();
                path.push_str(&format!(".{k}"));
                let found = first_mismatch(pv, a.get(k).unwrap_or(&Value::Null), path);
                path.truncate(len);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        // A list whose elements were unknown at plan time (`[firewall.web.id]`)
        // holds if every known element still does.
        (Value::List(p), Value::List(a)) if p.len() == a.len() => {
            p.iter().zip(a).enumerate().find_map(|(i, (pv, av))| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = first_mismatch(pv, av, path);
                path.truncate(len);
                found
            })
        }
        (p, a) if same(p, a) => None,
        _ => Some(path.trim_start_matches('.').to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infra_core::{AttributeSchema, Type};

    fn schema() -> Schema {
        Schema::new("test")
            .attribute("path", AttributeSchema::required(Type::String).force_new())
            .attribute("content", AttributeSchema::optional(Type::String))
            .attribute("id", AttributeSchema::computed(Type::String))
    }

    #[test]
    fn computed_attributes_are_unknown_on_create_and_kept_on_update() {
        let config = Value::object([("path", Value::string("/a")), ("content", Value::string("x"))]);
        let created = propose(&schema(), None, &config, &[]);
        assert_eq!(created.get("id"), Some(&Value::Unknown));
        let prior = Value::object([
            ("path", Value::string("/a")),
            ("content", Value::string("old")),
            ("id", Value::string("1")),
        ]);
        let updated = propose(&schema(), Some(&prior), &config, &[]);
        let replace = forced(&schema(), &updated, &prior);
        assert_eq!(updated.get("id"), Some(&Value::string("1")));
        assert_eq!(action(Some(&prior), &updated, &replace), Action::Update);
    }

    #[test]
    fn settle_decides_on_the_providers_value() {
        let prior =
            Value::object([("path", Value::string("/a")), ("content", Value::string("x")), ("id", Value::string("1"))]);
        // The user wrote "/a/" and the provider normalised it back to "/a": no replacement.
        let written = Value::object([("path", Value::string("/a/")), ("content", Value::string("x"))]);
        let proposed = propose(&schema(), Some(&prior), &written, &[]);
        assert_eq!(forced(&schema(), &proposed, &prior), vec!["path".to_string()]);
        let normalised =
            Value::object([("path", Value::string("/a")), ("content", Value::string("x")), ("id", Value::Unknown)]);
        let (planned, replace) = settle(&schema(), Some(&prior), &proposed, normalised, Vec::new());
        assert!(replace.is_empty());
        assert_eq!(planned.get("id"), Some(&Value::string("1")), "the known id comes back");
        // A provider asks for replacement: the carried-over id belongs to the old object.
        let proposed = propose(&schema(), Some(&prior), &prior, &[]);
        let (planned, replace) = settle(&schema(), Some(&prior), &proposed, proposed.clone(), vec!["content".into()]);
        assert_eq!(replace, vec!["content".to_string()]);
        assert_eq!(planned.get("id"), Some(&Value::Unknown));
    }

    #[test]
    fn settle_keeps_what_the_provider_made_unknown() {
        let schema = schema().attribute("digest", AttributeSchema::computed(Type::String));
        let prior = Value::object([
            ("path", Value::string("/a")),
            ("content", Value::string("x")),
            ("digest", Value::string("d1")),
            ("id", Value::string("1")),
        ]);
        // The content becomes known only at apply; the provider cannot know the digest.
        let config = Value::object([("path", Value::string("/a")), ("content", Value::Unknown)]);
        let proposed = propose(&schema, Some(&prior), &config, &[]);
        let mut planned = proposed.clone();
        if let Value::Object(map) = &mut planned {
            map.insert("digest".into(), Value::Unknown);
        }
        let (planned, replace) = settle(&schema, Some(&prior), &proposed, planned, Vec::new());
        assert!(replace.is_empty());
        assert_eq!(planned.get("digest"), Some(&Value::Unknown), "not the old digest: apply would contradict it");
        assert_eq!(planned.get("id"), Some(&Value::string("1")));
    }

    #[test]
    fn force_new_attributes_replace_and_ignore_changes_keeps_prior() {
        let prior =
            Value::object([("path", Value::string("/a")), ("content", Value::string("x")), ("id", Value::string("1"))]);
        let moved = Value::object([("path", Value::string("/b")), ("content", Value::string("x"))]);
        let after = propose(&schema(), Some(&prior), &moved, &[]);
        assert_eq!(forced(&schema(), &after, &prior), vec!["path".to_string()]);
        assert_eq!(after.get("id"), Some(&Value::Unknown));
        let edited = Value::object([("path", Value::string("/a")), ("content", Value::string("new"))]);
        let ignored = Ident { name: "content".into(), span: Default::default() };
        let after = propose(&schema(), Some(&prior), &edited, &[ignored]);
        assert_eq!(action(Some(&prior), &after, &[]), Action::NoOp);
    }
}
