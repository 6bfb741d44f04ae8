//! `file` and `directory` on a server. A file's content travels on stdin and
//! lands through a temporary file renamed into place, so a reader never sees
//! half of it; its path, owner, group and mode are quoted arguments.

use infra_core::{AttributeSchema, ProviderError, Schema, Type, Value};
use sha2::{Digest, Sha256};

use crate::facts::{Answer, Facts, Kind, Question, normal_mode};
use crate::{on_server, text};
use infra_ssh::Connection;

fn ownership(schema: Schema, default_mode: &str) -> Schema {
    schema
        .attribute(
            "owner",
            AttributeSchema::optional_computed(Type::String).describe("user name; default: the login user"),
        )
        .attribute("group", AttributeSchema::optional_computed(Type::String))
        .attribute("mode", AttributeSchema::optional(Type::String).default(Value::string(default_mode)))
}

pub fn file_schema() -> Schema {
    on_server(ownership(Schema::new("A file on a server."), "0644"))
        .attribute("path", AttributeSchema::required(Type::String).force_new().describe("absolute path"))
        .attribute("content", AttributeSchema::optional(Type::String))
        .attribute("source", AttributeSchema::optional(Type::String).describe("a local file whose bytes are copied"))
        .attribute("content_sha256", AttributeSchema::computed(Type::String))
        .attribute("id", AttributeSchema::computed(Type::String))
}

pub fn directory_schema() -> Schema {
    on_server(ownership(Schema::new("A directory on a server."), "0755"))
        .attribute("path", AttributeSchema::required(Type::String).force_new().describe("absolute path"))
        .attribute("id", AttributeSchema::computed(Type::String))
}

pub fn permissions_schema() -> Schema {
    on_server(Schema::new("The mode (and owner, group) of a path infra does not otherwise manage, e.g. /etc/crontab."))
        .attribute("path", AttributeSchema::required(Type::String).force_new().describe("absolute path; must exist"))
        .attribute("mode", AttributeSchema::required(Type::String))
        .attribute("owner", AttributeSchema::optional_computed(Type::String))
        .attribute("group", AttributeSchema::optional_computed(Type::String))
        .attribute("id", AttributeSchema::computed(Type::String))
}

pub fn validate(kind: &str, config: &Value) -> Vec<ProviderError> {
    let mut errors = Vec::new();
    if let Some(path) = config.get("path").and_then(Value::as_str)
        && !path.starts_with('/')
    {
        errors.push(ProviderError::invalid("path", format!("{path:?} is not an absolute path")));
    }
    if let Some(mode) = config.get("mode").and_then(Value::as_str)
        && normal_mode(mode).is_none()
    {
        errors.push(ProviderError::invalid("mode", format!("mode {mode:?} is not octal, such as \"0644\"")));
    }
    let given = |k: &str| config.get(k).is_some_and(|v| !v.is_null());
    if kind == "file" && given("content") == given("source") {
        errors.push(ProviderError::invalid("content", "a file needs exactly one of `content` and `source`"));
    }
    errors
}

/// The bytes a file is to hold.
fn bytes_of(planned: &Value) -> Result<Option<Vec<u8>>, ProviderError> {
    let (bare, _) = planned.unmark();
    if let Some(content) = bare.get("content").filter(|c| !c.is_null()) {
        return Ok(content.as_str().map(|s| s.as_bytes().to_vec()));
    }
    match bare.get("source").and_then(Value::as_str) {
        Some(source) => std::fs::read(source)
            .map(Some)
            .map_err(|e| ProviderError::invalid("source", format!("cannot read source {source}: {e}"))),
        None => Ok(None),
    }
}

/// Fills the content's digest (so a change shows at plan time), the id and a
/// four-digit mode.
pub fn plan(kind: &str, mut proposed: Value) -> Result<Value, ProviderError> {
    let set = |v: &mut Value, k: &str, x: Value| {
        if let Value::Object(map) = v {
            map.insert(k.to_string(), x);
        }
    };
    let path = proposed.get("path").cloned().unwrap_or(Value::Unknown);
    set(&mut proposed, "id", path);
    if let Some(mode) = proposed.get("mode").and_then(Value::as_str).and_then(normal_mode) {
        set(&mut proposed, "mode", Value::string(mode));
    }
    if kind == "file" {
        let known = proposed.get("content").is_none_or(Value::is_wholly_known);
        let digest = match bytes_of(&proposed)? {
            Some(bytes) if known => Value::string(hex::encode(Sha256::digest(&bytes))),
            _ => Value::Unknown,
        };
        set(&mut proposed, "content_sha256", digest);
    }
    Ok(proposed)
}

const WRITE_FILE: &str = r#"
set -eu
p=$1 owner=$2 group=$3 mode=$4
d=$(dirname -- "$p")
mkdir -p -- "$d"
t=$(mktemp -- "$d/.infra-XXXXXX")
trap 'rm -f -- "$t"' EXIT
cat > "$t"
chmod -- "$mode" "$t"
if [ -n "$owner" ]; then chown -- "$owner" "$t"; fi
if [ -n "$group" ]; then chgrp -- "$group" "$t"; fi
mv -f -- "$t" "$p"
trap - EXIT
stat -c '%U %G' -- "$p"
"#;

const MAKE_DIRECTORY: &str = r#"
set -eu
p=$1 owner=$2 group=$3 mode=$4
mkdir -p -- "$p"
chmod -- "$mode" "$p"
if [ -n "$owner" ]; then chown -- "$owner" "$p"; fi
if [ -n "$group" ]; then chgrp -- "$group" "$p"; fi
stat -c '%U %G' -- "$p"
"#;

const SET_PERMISSIONS: &str = r#"
set -eu
p=$1 owner=$2 group=$3 mode=$4
if [ ! -e "$p" ]; then echo "$p does not exist" >&2; exit 1; fi
chmod -- "$mode" "$p"
if [ -n "$owner" ]; then chown -- "$owner" "$p"; fi
if [ -n "$group" ]; then chgrp -- "$group" "$p"; fi
stat -c '%U %G' -- "$p"
"#;

const REMOVE_FILE: &str = r#"rm -f -- "$1""#;

/// Removes a directory only when nothing is left in it: what infra did not
/// put there is not infra's to delete.
const REMOVE_DIRECTORY: &str = r#"
if [ ! -e "$1" ]; then exit 0; fi
rmdir -- "$1" 2>/dev/null || { echo "directory $1 is not empty: infra removes only what it manages" >&2; exit 1; }
"#;

/// Writes `bytes` to `path` atomically with this mode (owner and group left
/// as the login user's when empty).
pub async fn put(
    connection: &Connection,
    path: &str,
    bytes: &[u8],
    mode: &str,
    owner: &str,
    group: &str,
) -> Result<(), ProviderError> {
    let what = format!("writing {path}");
    connection.run_ok(&what, WRITE_FILE, &[path, owner, group, mode], bytes).await.map(|_| ())
}

/// Creates or updates a file or directory as planned.
pub async fn write(connection: &Connection, kind: &str, planned: &Value) -> Result<Value, ProviderError> {
    let (bare, _) = planned.unmark();
    let path = text(&bare, "path");
    let mode = normal_mode(text(&bare, "mode")).unwrap_or_else(|| "0644".to_string());
    let args = [path, text(&bare, "owner"), text(&bare, "group"), mode.as_str()];
    let (script, stdin, what) = match kind {
        "file" => (WRITE_FILE, bytes_of(&bare)?.unwrap_or_default(), format!("writing {path}")),
        "permissions" => (SET_PERMISSIONS, Vec::new(), format!("setting the mode of {path}")),
        _ => (MAKE_DIRECTORY, Vec::new(), format!("making directory {path}")),
    };
    // Each script ends by printing the path's owner and group: what the server
    // made of an unset one is recorded, so a later refresh compares like with like.
    let output = connection.run_ok(&what, script, &args, &stdin).await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut found = stdout.split_whitespace();
    let mut state = plan(kind, planned.clone())?;
    if let Value::Object(map) = &mut state {
        for (key, value) in [("owner", found.next()), ("group", found.next())] {
            if let Some(value) = value
                && map.get(key).is_none_or(|v| v.is_null() || matches!(v, Value::Unknown))
            {
                map.insert(key.to_string(), Value::string(value));
            }
        }
    }
    Ok(state)
}

pub async fn remove(connection: &Connection, kind: &str, prior: &Value) -> Result<(), ProviderError> {
    if kind == "permissions" {
        // The path was never infra's; forgetting its mode leaves it as it is.
        return Ok(());
    }
    let path = text(prior, "path");
    let script = if kind == "file" { REMOVE_FILE } else { REMOVE_DIRECTORY };
    connection.run_ok(&format!("removing {path}"), script, &[path], &[]).await.map(|_| ())
}

pub fn question(state: &Value) -> Question {
    Question::Path(text(state, "path").to_string())
}

/// The path's state, and for a file whose content is written in the
/// configuration (and not secret) its bytes too, so a change made by hand
/// shows as a line diff.
pub fn questions(kind: &str, state: &Value) -> Vec<Question> {
    let mut questions = vec![question(state)];
    if kind == "file" && matches!(state.get("content"), Some(Value::String(_))) {
        questions.push(Question::Content(text(state, "path").to_string()));
    }
    questions
}

/// The recorded value with what the server shows laid over it; `None` when the
/// path is gone or is no longer the right kind of thing.
pub fn observed(kind: &str, recorded: &Value, facts: &Facts) -> Option<Value> {
    let Answer::Path(found) = facts.answer(&question(recorded)) else { return None };
    let expected = match kind {
        "file" => Some(Kind::File),
        "directory" => Some(Kind::Directory),
        _ => None,
    };
    if expected.is_some_and(|k| found.kind != k) {
        return None;
    }
    let mut value = recorded.clone();
    if let Value::Object(map) = &mut value {
        map.insert("mode".into(), Value::string(&found.mode));
        map.insert("owner".into(), Value::string(&found.owner));
        map.insert("group".into(), Value::string(&found.group));
        if let Some(sum) = found.sha256.as_ref().filter(|_| kind == "file") {
            let changed = map.get("content_sha256").and_then(Value::as_str) != Some(sum.as_str());
            map.insert("content_sha256".into(), Value::string(sum));
            if changed
                && matches!(map.get("content"), Some(Value::String(_)))
                && let Answer::Content(bytes) = facts.answer(&Question::Content(text(recorded, "path").to_string()))
            {
                map.insert("content".into(), Value::string(String::from_utf8_lossy(bytes)));
            }
        }
    }
    Some(value)
}
