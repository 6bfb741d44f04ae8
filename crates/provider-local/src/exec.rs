//! `exec`: runs a command (an argv, no shell unless the argv asks for one) when
//! the resource is created, that is when it is new or its `triggers` changed.

use std::time::Duration;

use infra_core::{AttributeSchema, ProviderError, Schema, Type, Value};

/// How much of a failing command's stderr an error shows.
const STDERR_TAIL: usize = 2000;

pub fn schema() -> Schema {
    Schema::new("Runs a command on create; recreated (run again) when `triggers` or the command change.")
        .attribute(
            "command",
            AttributeSchema::required(Type::list(Type::String)).force_new().describe("argv: program then arguments"),
        )
        .attribute("triggers", AttributeSchema::optional(Type::map(Type::String)).force_new())
        .attribute("dir", AttributeSchema::optional(Type::String).force_new())
        .attribute("environment", AttributeSchema::optional(Type::map(Type::String)).force_new())
        .attribute("timeout", AttributeSchema::optional(Type::Number).default(Value::Number(600.0)).describe("seconds"))
        .attribute("stdout", AttributeSchema::computed(Type::String))
        .attribute("id", AttributeSchema::computed(Type::String))
}

pub fn validate(config: &Value) -> Vec<ProviderError> {
    match config.get("command").and_then(Value::as_list) {
        Some([]) => vec![ProviderError::invalid("command", "`command` needs at least the program to run")],
        _ => Vec::new(),
    }
}

pub async fn run(planned: &Value) -> Result<Value, ProviderError> {
    let (bare, _) = planned.unmark();
    let argv: Vec<String> = bare
        .get("command")
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let Some((program, args)) = argv.split_first() else {
        return Err(ProviderError::invalid("command", "empty command"));
    };
    let mut command = tokio::process::Command::new(program);
    command.args(args).stdin(std::process::Stdio::null()).kill_on_drop(true);
    if let Some(dir) = bare.get("dir").and_then(Value::as_str) {
        command.current_dir(dir);
    }
    if let Some(env) = bare.get("environment").and_then(Value::as_object) {
        for (k, v) in env {
            if let Some(v) = v.as_str() {
                command.env(k, v);
            }
        }
    }
    let timeout = Duration::from_secs_f64(bare.get("timeout").and_then(Value::as_number).unwrap_or(600.0).max(0.0));
    let output = tokio::time::timeout(timeout, command.output())
        .await
        .map_err(|_| ProviderError::failed(format!("`{program}` did not finish within {} s", timeout.as_secs())))?
        .map_err(|e| ProviderError::failed(format!("cannot run `{program}`: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr.chars().rev().take(STDERR_TAIL).collect::<Vec<_>>().into_iter().rev().collect();
        let code = output.status.code().map_or_else(|| "a signal".to_string(), |c| format!("exit code {c}"));
        return Err(ProviderError::failed(format!("`{program}` failed with {code}: {}", tail.trim_end())));
    }
    let mut state = match planned {
        Value::Object(map) => map.clone(),
        _ => Default::default(),
    };
    state.insert("stdout".into(), Value::String(String::from_utf8_lossy(&output.stdout).into_owned()));
    state.insert("id".into(), Value::string(uuid_like()));
    Ok(Value::Object(state))
}

fn uuid_like() -> String {
    use rand::Rng as _;
    let bytes: [u8; 8] = rand::rng().random();
    hex::encode(bytes)
}
