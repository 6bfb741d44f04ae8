//! `random_id` and `random_password`: values generated once and kept in state.

use infra_core::{AttributeSchema, ProviderError, Schema, Type, Value};
use rand::Rng as _;

pub fn id_schema() -> Schema {
    Schema::new("Random bytes, generated once; regenerated when `keepers` change.")
        .attribute("byte_length", AttributeSchema::optional(Type::Number).default(Value::Number(8.0)).force_new())
        .attribute("keepers", AttributeSchema::optional(Type::map(Type::String)).force_new())
        .attribute("hex", AttributeSchema::computed(Type::String))
        .attribute("id", AttributeSchema::computed(Type::String))
}

pub fn password_schema() -> Schema {
    Schema::new("A random password, generated once and always sensitive.")
        .attribute("length", AttributeSchema::optional(Type::Number).default(Value::Number(24.0)).force_new())
        .attribute("special", AttributeSchema::optional(Type::Bool).default(Value::Bool(true)).force_new())
        .attribute("keepers", AttributeSchema::optional(Type::map(Type::String)).force_new())
        .attribute("result", AttributeSchema::computed(Type::String).sensitive())
        .attribute("id", AttributeSchema::computed(Type::String))
}

pub fn validate(kind: &str, config: &Value) -> Vec<ProviderError> {
    let (attr, min, max) = if kind == "random_id" { ("byte_length", 1.0, 1024.0) } else { ("length", 4.0, 1024.0) };
    match config.get(attr).and_then(Value::as_number) {
        Some(n) if n < min || n > max || n.fract() != 0.0 => {
            vec![ProviderError::invalid(attr, format!("`{attr}` must be a whole number from {min} to {max}"))]
        }
        _ => Vec::new(),
    }
}

pub fn create(kind: &str, planned: &Value) -> Result<Value, ProviderError> {
    let mut state = match planned {
        Value::Object(map) => map.clone(),
        _ => return Err(ProviderError::failed("planned value is not an object")),
    };
    let mut rng = rand::rng();
    if kind == "random_id" {
        let n = planned.get("byte_length").and_then(Value::as_number).unwrap_or(8.0) as usize;
        let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        let hex = hex::encode(bytes);
        state.insert("hex".into(), Value::string(&hex));
        state.insert("id".into(), Value::string(hex));
    } else {
        let length = planned.get("length").and_then(Value::as_number).unwrap_or(24.0) as usize;
        let special = planned.get("special").and_then(Value::as_bool).unwrap_or(true);
        let mut alphabet: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
        if special {
            alphabet.extend("!#%*+-=?@^_~".chars());
        }
        let password: String = (0..length).map(|_| alphabet[rng.random_range(0..alphabet.len())]).collect();
        state.insert("result".into(), Value::String(password).sensitive());
        state.insert("id".into(), Value::string("none"));
    }
    Ok(Value::Object(state))
}
