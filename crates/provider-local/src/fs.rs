//! `file` and `directory`: content and permissions on the local filesystem.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use infra_core::{AttributeSchema, ProviderError, Schema, Type, Value};
use sha2::Digest as _;

use crate::str_attr;

pub fn file_schema() -> Schema {
    Schema::new("A file with the given content (or a copy of `source`) and permissions.")
        .attribute("path", AttributeSchema::required(Type::String).force_new().describe("where the file is written"))
        .attribute("content", AttributeSchema::optional(Type::String).describe("the file's text"))
        .attribute("source", AttributeSchema::optional(Type::String).describe("a file to copy instead of `content`"))
        .attribute(
            "mode",
            AttributeSchema::optional(Type::String).default(Value::string("0644")).describe("octal permissions"),
        )
        .attribute("content_sha256", AttributeSchema::computed(Type::String))
        .attribute("id", AttributeSchema::computed(Type::String))
}

pub fn directory_schema() -> Schema {
    Schema::new("A directory (and its parents) with the given permissions.")
        .attribute("path", AttributeSchema::required(Type::String).force_new())
        .attribute("mode", AttributeSchema::optional(Type::String).default(Value::string("0755")))
        .attribute("id", AttributeSchema::computed(Type::String))
}

fn parse_mode(mode: &str) -> Option<u32> {
    if mode.len() < 3 || mode.len() > 4 {
        return None;
    }
    u32::from_str_radix(mode, 8).ok().filter(|m| *m <= 0o7777)
}

pub fn validate_file(config: &Value) -> Vec<ProviderError> {
    let mut errors = Vec::new();
    let has = |k: &str| config.get(k).is_some_and(|v| !v.is_null());
    match (has("content"), has("source")) {
        (true, true) => errors.push(ProviderError::invalid("source", "set either `content` or `source`, not both")),
        (false, false) => errors.push(ProviderError::invalid("path", "a file needs `content` or `source`")),
        _ => {}
    }
    errors.extend(validate_mode(config));
    errors
}

fn validate_mode(config: &Value) -> Option<ProviderError> {
    let mode = str_attr(config, "mode")?;
    parse_mode(mode)
        .is_none()
        .then(|| ProviderError::invalid("mode", format!("mode {mode:?} is not octal permissions such as \"0644\"")))
}

pub fn with_id_from_path(mut planned: Value) -> Value {
    if let Value::Object(map) = &mut planned {
        let id = map.get("path").cloned().unwrap_or(Value::Unknown);
        map.insert("id".into(), id);
    }
    planned
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Knows the content hash at plan time, so a changed `source` file shows as a change.
pub fn plan_file(proposed: Value) -> Result<Value, ProviderError> {
    let mut planned = with_id_from_path(proposed);
    let digest = match (planned.get("content"), str_attr(&planned, "source")) {
        (Some(content), _) if !content.is_null() => match content.peel() {
            // A hash of a short secret gives the secret away to anyone who guesses it.
            Value::String(s) if content.contains_sensitive() => Value::string(sha256(s.as_bytes())).sensitive(),
            Value::String(s) => Value::string(sha256(s.as_bytes())),
            _ => Value::Unknown,
        },
        (_, Some(source)) => {
            let bytes = std::fs::read(source)
                .map_err(|e| ProviderError::invalid("source", format!("cannot read source {source}: {e}")))?;
            Value::string(sha256(&bytes))
        }
        _ => Value::Unknown,
    };
    if let Value::Object(map) = &mut planned {
        map.insert("content_sha256".into(), digest);
    }
    Ok(planned)
}

fn io_error(action: &str, path: &str, e: std::io::Error) -> ProviderError {
    ProviderError::failed(format!("cannot {action} {path}: {e}"))
}

pub fn write_file(planned: &Value) -> Result<Value, ProviderError> {
    let path = str_attr(planned, "path").ok_or_else(|| ProviderError::invalid("path", "missing path"))?;
    let bytes = match (planned.get("content").map(Value::peel), str_attr(planned, "source")) {
        (Some(Value::String(s)), _) => s.clone().into_bytes(),
        (_, Some(source)) => std::fs::read(source).map_err(|e| io_error("read", source, e))?,
        _ => return Err(ProviderError::invalid("content", "content is not known")),
    };
    let mode = str_attr(planned, "mode").and_then(parse_mode).unwrap_or(0o644);
    let target = Path::new(path);
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| io_error("create the directory of", path, e))?;
    }
    // A fixed name, so a write cut short by a crash leaves nothing new behind
    // on the next run.
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = target.with_file_name(format!(".{name}.infra-tmp"));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        std::fs::rename(&tmp, target)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error("write", path, e));
    }
    let mut state = planned.clone();
    if let Value::Object(map) = &mut state {
        map.insert("content_sha256".into(), Value::string(sha256(&bytes)));
        map.insert("id".into(), Value::string(path));
    }
    Ok(state)
}

fn mode_string(meta: &std::fs::Metadata) -> String {
    format!("{:04o}", meta.permissions().mode() & 0o7777)
}

/// Reads back what is on disk. Content is read only for files that were written
/// from `content`, so drift shows as a line diff.
pub fn read_file(state: &Value) -> Result<Option<Value>, ProviderError> {
    let path = str_attr(state, "path").ok_or_else(|| ProviderError::invalid("path", "state has no path"))?;
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("read", path, e)),
    };
    let meta = std::fs::metadata(path).map_err(|e| io_error("stat", path, e))?;
    let mut found = match state {
        Value::Object(map) => map.clone(),
        _ => Default::default(),
    };
    found.insert("path".into(), Value::string(path));
    found.insert("id".into(), Value::string(path));
    found.insert("mode".into(), Value::string(mode_string(&meta)));
    found.insert("content_sha256".into(), Value::string(sha256(&bytes)));
    let from_content =
        state.get("content").is_some_and(|c| !c.is_null()) || state.get("source").is_none_or(Value::is_null);
    if from_content {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        found.insert("content".into(), Value::String(text));
    }
    Ok(Some(Value::Object(found)))
}

pub fn delete_file(prior: &Value) -> Result<(), ProviderError> {
    let path = str_attr(prior, "path").ok_or_else(|| ProviderError::invalid("path", "state has no path"))?;
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("delete", path, e)),
    }
}

pub fn create_directory(planned: &Value) -> Result<Value, ProviderError> {
    let path = str_attr(planned, "path").ok_or_else(|| ProviderError::invalid("path", "missing path"))?;
    std::fs::create_dir_all(path).map_err(|e| io_error("create", path, e))?;
    let mode = str_attr(planned, "mode").and_then(parse_mode).unwrap_or(0o755);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| io_error("chmod", path, e))?;
    Ok(with_id_from_path(planned.clone()))
}

pub fn read_directory(state: &Value) -> Result<Option<Value>, ProviderError> {
    let path = str_attr(state, "path").ok_or_else(|| ProviderError::invalid("path", "state has no path"))?;
    let meta = match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("stat", path, e)),
    };
    Ok(Some(Value::object([
        ("path", Value::string(path)),
        ("id", Value::string(path)),
        ("mode", Value::string(mode_string(&meta))),
    ])))
}

pub fn delete_directory(prior: &Value) -> Result<(), ProviderError> {
    let path = str_attr(prior, "path").ok_or_else(|| ProviderError::invalid("path", "state has no path"))?;
    match std::fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => Err(ProviderError::failed(format!(
            "directory {path} is not empty: infra removes only directories it would leave empty"
        ))),
        Err(e) => Err(io_error("delete", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_delete_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/motd").display().to_string();
        let planned = Value::object([
            ("path", Value::string(&path)),
            ("content", Value::string("hello\n")),
            ("mode", Value::string("0600")),
            ("source", Value::Null),
        ]);
        let written = write_file(&planned).expect("writes");
        let read = read_file(&written).expect("reads").expect("exists");
        assert_eq!(read.get("mode"), Some(&Value::string("0600")));
        assert_eq!(read.get("content"), Some(&Value::string("hello\n")));
        delete_file(&written).expect("deletes");
        assert_eq!(read_file(&written).expect("reads"), None);
    }

    #[test]
    fn rejects_bad_modes_and_missing_content() {
        let config = Value::object([("path", Value::string("/x")), ("mode", Value::string("rw-r--r--"))]);
        let errors = validate_file(&config);
        assert_eq!(errors.len(), 2);
    }
}
