//! [`Value`]: dynamically typed configuration data with unknown and sensitive marks.

use std::collections::BTreeMap;
use std::fmt;

/// A value of the configuration language and of resource attributes.
///
/// `Unknown` is a value that will only be known after apply. `Sensitive` wraps a
/// secret: operations on it yield sensitive results and renderers redact it.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    List(Vec<Value>),
    Object(crate::Object),
    Unknown,
    Sensitive(Box<Value>),
}

/// A path into a value: object keys and list indexes.
pub type ValuePath = Vec<PathStep>;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathStep {
    Key(String),
    Index(usize),
}

impl fmt::Display for PathStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathStep::Key(k) => write!(f, ".{k}"),
            PathStep::Index(i) => write!(f, "[{i}]"),
        }
    }
}

impl Value {
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn object<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Object(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn sensitive(self) -> Value {
        match self {
            already @ Value::Sensitive(_) => already,
            other => Value::Sensitive(Box::new(other)),
        }
    }

    /// The value without a top-level sensitive mark.
    pub fn peel(&self) -> &Value {
        match self {
            Value::Sensitive(inner) => inner.peel(),
            other => other,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.peel(), Value::Null)
    }

    /// True when no part of the value is unknown.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::Sensitive(inner) => inner.is_wholly_known(),
            Value::List(items) => items.iter().all(Value::is_wholly_known),
            Value::Object(map) => map.values().all(Value::is_wholly_known),
            _ => true,
        }
    }

    /// True when any part of the value is sensitive.
    pub fn contains_sensitive(&self) -> bool {
        match self {
            Value::Sensitive(_) => true,
            Value::List(items) => items.iter().any(Value::contains_sensitive),
            Value::Object(map) => map.values().any(Value::contains_sensitive),
            _ => false,
        }
    }

    /// Removes every sensitive mark, returning the bare value and whether any was found.
    pub fn unmark(&self) -> (Value, bool) {
        match self {
            Value::Sensitive(inner) => (inner.unmark().0, true),
            Value::List(items) => {
                let mut any = false;
                let items = items
                    .iter()
                    .map(|v| {
                        let (v, s) = v.unmark();
                        any |= s;
                        v
                    })
                    .collect();
                (Value::List(items), any)
            }
            Value::Object(map) => {
                let mut any = false;
                let map = map
                    .iter()
                    .map(|(k, v)| {
                        let (v, s) = v.unmark();
                        any |= s;
                        (k.clone(), v)
                    })
                    .collect();
                (Value::Object(map), any)
            }
            other => (other.clone(), false),
        }
    }

    /// The bare value with null object entries dropped: the form in which two
    /// values that mean the same compare equal.
    pub fn canonical(&self) -> Value {
        fn without_nulls(v: Value) -> Value {
            match v {
                Value::Object(map) => Value::Object(
                    map.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, without_nulls(v))).collect(),
                ),
                Value::List(items) => Value::List(items.into_iter().map(without_nulls).collect()),
                other => other,
            }
        }
        without_nulls(self.unmark().0)
    }

    /// Whether two attribute values differ in meaning: set to null and left out
    /// mean the same, and so does a sensitive mark over the same value (marking
    /// a value secret is not a change).
    pub fn differs(a: Option<&Value>, b: Option<&Value>) -> bool {
        let canonical = |v: Option<&Value>| v.map(Value::canonical).unwrap_or(Value::Null);
        canonical(a) != canonical(b)
    }

    /// `text` with every secret this value holds taken out: each sensitive
    /// part, as written and as Rust's `{:?}` would quote it, becomes
    /// `(sensitive value)`. For messages made from a value by code that only
    /// saw it unmarked (a provider's "mode \"…\" is not octal"), so an
    /// error about a secret says so without showing it.
    pub fn redact(&self, text: &str) -> String {
        let mut secrets = Vec::new();
        collect_secret_texts(self, false, &mut secrets);
        let mut forms: Vec<String> = secrets
            .into_iter()
            .filter(|s| !s.is_empty())
            .flat_map(|s| {
                let quoted = format!("{s:?}");
                [quoted[1..quoted.len() - 1].to_string(), s]
            })
            .collect();
        // Longest first, so a secret containing another is taken out whole.
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        forms.dedup();
        forms.iter().fold(text.to_string(), |text, secret| text.replace(secret.as_str(), "(sensitive value)"))
    }

    /// Paths of every sensitive part, for recording in state.
    pub fn sensitive_paths(&self) -> Vec<ValuePath> {
        let mut out = Vec::new();
        collect_paths(self, &|v| matches!(v, Value::Sensitive(_)), &mut Vec::new(), &mut out);
        out
    }

    /// Paths of every unknown part, for saved plans.
    pub fn unknown_paths(&self) -> Vec<ValuePath> {
        let mut out = Vec::new();
        collect_paths(self, &|v| matches!(v, Value::Unknown), &mut Vec::new(), &mut out);
        out
    }

    /// Marks the parts at `paths` sensitive (the inverse of [`Value::sensitive_paths`]).
    pub fn mark_paths(mut self, paths: &[ValuePath]) -> Value {
        for path in paths {
            replace_at(&mut self, path, &|v| v.sensitive());
        }
        self
    }

    /// Makes the parts at `paths` unknown (the inverse of [`Value::unknown_paths`]).
    pub fn mark_unknown(mut self, paths: &[ValuePath]) -> Value {
        for path in paths {
            replace_at(&mut self, path, &|_| Value::Unknown);
        }
        self
    }

    /// The part of the value at `path`, looking through sensitive marks.
    pub fn at_path(&self, path: &[PathStep]) -> Option<&Value> {
        let Some((first, rest)) = path.split_first() else { return Some(self) };
        let child = match (self.peel(), first) {
            (Value::List(items), PathStep::Index(i)) => items.get(*i),
            (Value::Object(map), PathStep::Key(k)) => map.get(k),
            _ => None,
        }?;
        child.at_path(rest)
    }

    /// Puts `part` at `path`; false when the path does not lead anywhere.
    pub fn set_path(&mut self, path: &[PathStep], part: Value) -> bool {
        let Some((first, rest)) = path.split_first() else {
            *self = part;
            return true;
        };
        let container = match self {
            Value::Sensitive(inner) => inner.as_mut(),
            other => other,
        };
        let child = match (container, first) {
            (Value::List(items), PathStep::Index(i)) => items.get_mut(*i),
            (Value::Object(map), PathStep::Key(k)) => map.get_mut(k),
            _ => None,
        };
        child.is_some_and(|child| child.set_path(rest, part))
    }

    /// An object whose top-level unknown attributes (computed, known after
    /// apply) are taken from `existing`, or null where it has none: a planned
    /// value completed by what the backend reports.
    pub fn with_computed(&self, existing: &Value) -> Value {
        let mut out = self.clone();
        if let Value::Object(map) = &mut out {
            for (k, v) in map.iter_mut() {
                if matches!(v, Value::Unknown) {
                    *v = existing.get(k).cloned().unwrap_or(Value::Null);
                }
            }
        }
        out
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        match self.peel() {
            Value::Object(map) => map.get(key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self.peel() {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.peel() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self.peel() {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self.peel() {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&BTreeMap<String, Value>> {
        match self.peel() {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    /// The string attribute `key` of an object; `""` when it is absent, null
    /// or not a string. Sensitive marks are looked through.
    pub fn text(&self, key: &str) -> &str {
        self.get(key).and_then(Value::as_str).unwrap_or_default()
    }

    /// The string attribute `key`, `None` when it is absent, not a string, or empty.
    pub fn non_empty_text(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
    }

    /// The strings of the list attribute `key` (elements that are not strings
    /// left out; empty when absent).
    pub fn strings(&self, key: &str) -> Vec<String> {
        self.get(key)
            .and_then(Value::as_list)
            .map(|l| l.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }

    /// Sets attribute `key` of an object; any other value is left as it is.
    pub fn set(&mut self, key: &str, value: Value) {
        if let Value::Object(map) = self {
            map.insert(key.to_string(), value);
        }
    }

    /// The id a backend gave the object this state describes (its `id`
    /// attribute); an error naming `system` when none was recorded.
    pub fn recorded_id(&self, system: &str) -> Result<String, crate::ProviderError> {
        self.non_empty_text("id")
            .map(str::to_string)
            .ok_or_else(|| crate::ProviderError::failed(format!("state records no {system} id for this object")))
    }

    /// The name of the value's type as users see it in messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Object(_) => "object",
            Value::Unknown => "unknown",
            Value::Sensitive(inner) => inner.type_name(),
        }
    }

    /// Converts to JSON. Unknown parts become null; sensitive marks are dropped
    /// (record them separately with [`Value::sensitive_paths`]).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null | Value::Unknown => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => number_to_json(*n),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::List(items) => serde_json::Value::Array(items.iter().map(Value::to_json).collect()),
            Value::Object(map) => {
                serde_json::Value::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Value::Sensitive(inner) => inner.to_json(),
        }
    }

    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => Value::List(items.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect())
            }
        }
    }

    /// The value as a string for interpolation: strings, numbers and bools only.
    pub fn to_template_string(&self) -> Option<String> {
        match self {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(format_number(*n)),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

fn number_to_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

/// Numbers print as integers when they are whole.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.0e15 { format!("{}", n as i64) } else { format!("{n}") }
}

fn collect_paths(value: &Value, wanted: &dyn Fn(&Value) -> bool, path: &mut ValuePath, out: &mut Vec<ValuePath>) {
    if wanted(value) {
        out.push(path.clone());
        return;
    }
    match value {
        Value::Sensitive(inner) => collect_paths(inner, wanted, path, out),
        Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(PathStep::Index(i));
                collect_paths(item, wanted, path, out);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                path.push(PathStep::Key(k.clone()));
                collect_paths(v, wanted, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn replace_at(value: &mut Value, path: &[PathStep], replace: &dyn Fn(Value) -> Value) {
    let Some((first, rest)) = path.split_first() else {
        *value = replace(std::mem::take(value));
        return;
    };
    let child = match (value, first) {
        (Value::List(items), PathStep::Index(i)) => items.get_mut(*i),
        (Value::Object(map), PathStep::Key(k)) => map.get_mut(k),
        _ => None,
    };
    if let Some(child) = child {
        replace_at(child, rest, replace);
    }
}

/// A compact HCL-like rendering that never reveals sensitive parts.
/// The text of every leaf under a sensitive mark.
fn collect_secret_texts(value: &Value, secret: bool, out: &mut Vec<String>) {
    match value {
        Value::Sensitive(inner) => collect_secret_texts(inner, true, out),
        Value::List(items) => items.iter().for_each(|v| collect_secret_texts(v, secret, out)),
        Value::Object(map) => map.values().for_each(|v| collect_secret_texts(v, secret, out)),
        Value::String(s) if secret => out.push(s.clone()),
        Value::Number(n) if secret => out.push(format_number(*n)),
        _ => {}
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => f.write_str(&format_number(*n)),
            Value::String(s) => write!(f, "{s:?}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Object(map) => {
                if map.is_empty() {
                    return f.write_str("{}");
                }
                f.write_str("{ ")?;
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} = {v}")?;
                }
                f.write_str(" }")
            }
            Value::Unknown => f.write_str("(known after apply)"),
            Value::Sensitive(_) => f.write_str("(sensitive value)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_look_through_secrets_and_default_to_nothing() {
        let mut value = Value::object([
            ("name", Value::string("web").sensitive()),
            ("empty", Value::string("")),
            ("groups", Value::List(vec![Value::string("a"), Value::Number(1.0), Value::string("b").sensitive()])),
            ("id", Value::string("i-1")),
        ]);
        assert_eq!((value.text("name"), value.text("missing"), value.text("groups")), ("web", "", ""));
        assert_eq!((value.non_empty_text("empty"), value.non_empty_text("name")), (None, Some("web")));
        assert_eq!(value.strings("groups"), ["a", "b"]);
        assert_eq!(value.recorded_id("AWS").expect("an id"), "i-1");
        value.set("id", Value::Null);
        let error = value.recorded_id("AWS").expect_err("no id");
        assert_eq!(error.message, "state records no AWS id for this object");
        let mut not_an_object = Value::string("x");
        not_an_object.set("id", Value::Null);
        assert_eq!(not_an_object, Value::string("x"));
    }

    #[test]
    fn redact_takes_every_secret_out_of_a_message() {
        let config = Value::object([
            ("mode", Value::string("hunter\"2").sensitive()),
            ("env", Value::object([("TOKEN", Value::string("s3cr3t").sensitive()), ("PLAIN", Value::string("shown"))])),
            ("port", Value::Number(8080.0).sensitive()),
        ]);
        let message = format!("mode {:?} is not octal; s3cr3t at 8080; shown", "hunter\"2");
        assert_eq!(
            config.redact(&message),
            "mode \"(sensitive value)\" is not octal; (sensitive value) at (sensitive value); shown"
        );
        assert_eq!(Value::string("plain").redact("plain text"), "plain text");
    }

    #[test]
    fn sensitive_paths_round_trip() {
        let v = Value::object([
            ("name", Value::string("db")),
            ("password", Value::string("hunter2").sensitive()),
            ("list", Value::List(vec![Value::Null, Value::Number(1.0).sensitive()])),
        ]);
        let paths = v.sensitive_paths();
        assert_eq!(paths.len(), 2);
        let (bare, any) = v.unmark();
        assert!(any);
        assert!(!bare.contains_sensitive());
        assert_eq!(bare.mark_paths(&paths), v);
    }

    #[test]
    fn display_redacts_secrets() {
        let v = Value::object([("password", Value::string("hunter2").sensitive())]);
        assert_eq!(v.to_string(), "{ password = (sensitive value) }");
    }
}
