//! [`Type`]: the types of variables and resource attributes, and conversion to them.

use std::collections::BTreeMap;
use std::fmt;

use crate::Value;
use crate::value::format_number;

#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    Any,
    String,
    Number,
    Bool,
    List(Box<Type>),
    Map(Box<Type>),
    /// An object with exactly these attributes (missing ones become null).
    Object(BTreeMap<String, Type>),
}

impl Type {
    pub fn list(of: Type) -> Type {
        Type::List(Box::new(of))
    }

    pub fn map(of: Type) -> Type {
        Type::Map(Box::new(of))
    }

    /// Converts a value to this type the way Terraform does (numbers and bools to
    /// strings and back), keeping sensitive marks. The error says what was found.
    pub fn convert(&self, value: Value) -> Result<Value, String> {
        if let Value::Sensitive(inner) = value {
            // Never describe a secret in an error message.
            return self
                .convert(*inner)
                .map(Value::sensitive)
                .map_err(|_| "a sensitive value of another type".to_string());
        }
        if matches!(value, Value::Null | Value::Unknown) {
            return Ok(value);
        }
        match (self, value) {
            (Type::Any, v) => Ok(v),
            (Type::String, Value::String(s)) => Ok(Value::String(s)),
            (Type::String, Value::Number(n)) => Ok(Value::String(format_number(n))),
            (Type::String, Value::Bool(b)) => Ok(Value::String(b.to_string())),
            (Type::Number, Value::Number(n)) => Ok(Value::Number(n)),
            (Type::Number, Value::String(s)) => {
                s.trim().parse::<f64>().map(Value::Number).map_err(|_| format!("a string {s:?} that is not a number"))
            }
            (Type::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
            (Type::Bool, Value::String(s)) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
            (Type::List(of), Value::List(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| of.convert(item).map_err(|e| format!("element {i}: {e}")))
                .collect::<Result<_, _>>()
                .map(Value::List),
            (Type::Map(of), Value::Object(map)) => map
                .into_iter()
                .map(|(k, v)| of.convert(v).map(|v| (k.clone(), v)).map_err(|e| format!("key {k:?}: {e}")))
                .collect::<Result<_, _>>()
                .map(Value::Object),
            (Type::Object(fields), Value::Object(mut map)) => {
                if let Some(extra) = map.keys().find(|k| !fields.contains_key(*k)) {
                    return Err(format!("an object with an unexpected attribute {extra:?}"));
                }
                let mut out = BTreeMap::new();
                for (name, ty) in fields {
                    let v = map.remove(name).unwrap_or(Value::Null);
                    out.insert(name.clone(), ty.convert(v).map_err(|e| format!("attribute {name:?}: {e}"))?);
                }
                Ok(Value::Object(out.into()))
            }
            (_, v) => Err(describe(&v)),
        }
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) if s.len() <= 40 => format!("a string {s:?}"),
        other => format!("a {}", other.type_name()),
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Any => f.write_str("any"),
            Type::String => f.write_str("string"),
            Type::Number => f.write_str("number"),
            Type::Bool => f.write_str("bool"),
            Type::List(of) => write!(f, "list({of})"),
            Type::Map(of) => write!(f, "map({of})"),
            Type::Object(fields) => {
                f.write_str("object({")?;
                for (i, (k, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} = {t}")?;
                }
                f.write_str("})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_like_terraform() {
        assert_eq!(Type::String.convert(Value::Number(5.0)), Ok(Value::string("5")));
        assert_eq!(Type::Number.convert(Value::string("2.5")), Ok(Value::Number(2.5)));
        assert!(Type::Number.convert(Value::string("five")).is_err());
        assert_eq!(Type::Bool.convert(Value::string("true")), Ok(Value::Bool(true)));
        let secret = Value::Number(1.0).sensitive();
        assert_eq!(Type::String.convert(secret), Ok(Value::string("1").sensitive()));
        assert!(Type::list(Type::Number).convert(Value::string("x")).is_err());
    }
}
