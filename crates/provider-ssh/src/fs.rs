//! `file` and `directory` on a server. A file's content travels on stdin and
//! lands through a temporary file renamed into place, so a reader never sees
//! half of it; its path, owner, group and mode are quoted arguments.

use infra_core::{AttributeSchema, ProviderError, Schema, Type, Value};
use sha2::{Digest, Sha256};

use crate::facts::{Answer, Facts, Kind, Question, normal_mode};
use crate::on_server;
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
    let path = proposed.get("path").cloned().unwrap_or(Value::Unknown);
    proposed.set("id", path);
    if let Some(mode) = proposed.get("mode").and_then(Value::as_str).and_then(normal_mode) {
        proposed.set("mode", Value::string(mode));
    }
    if kind == "file" {
        let known = proposed.get("content").is_none_or(Value::is_wholly_known);
        let digest = match bytes_of(&proposed)? {
            Some(bytes) if known => Value::string(hex::encode(Sha256::digest(&bytes))),
            _ => Value::Unknown,
        };
        proposed.set("content_sha256", digest);
    }
    Ok(proposed)
}

/// Clears the temporary copies beside `$p` left by writers that are gone (a
/// server or an infra that died mid-write): each copy is named after the shell
/// that writes it, so a copy whose process still lives belongs to a write in
/// progress (two resources may write the same helper at once) and stays.
macro_rules! clear_stale_copies {
    () => {
        r#"
t="$(dirname -- "$p")/.$(basename -- "$p").infra-tmp"
for old in "$t" "$t".*; do
  case $old in "$t".*) if [ -d "/proc/${old##*.}" ]; then continue; fi;; esac
  rm -f -- "$old"
done
"#
    };
}

/// The content arrives on stdin. A connection cut mid-transfer (infra killed)
/// ends stdin early, so the copy is checked against its SHA-256 before it
/// replaces anything: a cut-short file is never installed. The copy sits
/// beside the file, private from the start.
const WRITE_FILE: &str = concat!(
    r#"
set -eu
p=$1 owner=$2 group=$3 mode=$4 sha256=$5
d=$(dirname -- "$p")
mkdir -p -- "$d"
"#,
    clear_stale_copies!(),
    r#"
t="$t.$$"
(umask 077 && rm -f -- "$t" && : > "$t")
trap 'rm -f -- "$t"' EXIT
trap 'exit 1' HUP INT TERM PIPE
cat > "$t"
if [ "$(sha256sum < "$t" | cut -d' ' -f1)" != "$sha256" ]; then
  echo "the content arrived incomplete; $p was left as it was" >&2
  exit 1
fi
chmod -- "$mode" "$t"
if [ -n "$owner" ]; then chown -- "$owner" "$t"; fi
if [ -n "$group" ]; then chgrp -- "$group" "$t"; fi
mv -f -- "$t" "$p"
trap - EXIT
stat -c '%U %G' -- "$p"
"#
);

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

const REMOVE_FILE: &str = concat!("p=$1\nrm -f -- \"$p\"\n", clear_stale_copies!());

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
    let digest = hex::encode(Sha256::digest(bytes));
    connection.run_ok(&what, WRITE_FILE, &[path, owner, group, mode, &digest], bytes).await.map(|_| ())
}

/// Creates or updates a file or directory as planned.
pub async fn write(connection: &Connection, kind: &str, planned: &Value) -> Result<Value, ProviderError> {
    let (bare, _) = planned.unmark();
    let path = bare.text("path");
    let mode = normal_mode(bare.text("mode")).unwrap_or_else(|| "0644".to_string());
    let mut args = vec![path, bare.text("owner"), bare.text("group"), mode.as_str()];
    let (script, stdin, what) = match kind {
        "file" => (WRITE_FILE, bytes_of(&bare)?.unwrap_or_default(), format!("writing {path}")),
        "permissions" => (SET_PERMISSIONS, Vec::new(), format!("setting the mode of {path}")),
        _ => (MAKE_DIRECTORY, Vec::new(), format!("making directory {path}")),
    };
    let digest = hex::encode(Sha256::digest(&stdin));
    if kind == "file" {
        args.push(&digest);
    }
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
    let path = prior.text("path");
    let script = if kind == "file" { REMOVE_FILE } else { REMOVE_DIRECTORY };
    connection.run_ok(&format!("removing {path}"), script, &[path], &[]).await.map(|_| ())
}

pub fn question(state: &Value) -> Question {
    Question::Path(state.text("path").to_string())
}

/// The file's bytes, unless they are still those recorded.
fn content_question(recorded: &Value) -> Question {
    let known = recorded.get("content_sha256").and_then(Value::as_str).map(str::to_string);
    Question::Content { path: recorded.text("path").to_string(), known }
}

/// The path's state, and for a file whose content is written in the
/// configuration (and not secret) its bytes too, so a change made by hand
/// shows as a line diff.
pub fn questions(kind: &str, state: &Value) -> Vec<Question> {
    let mut questions = vec![question(state)];
    if kind == "file" && matches!(state.get("content"), Some(Value::String(_))) {
        questions.push(content_question(state));
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
                && let Answer::Content(bytes) = facts.answer(&content_question(recorded))
            {
                map.insert("content".into(), Value::string(String::from_utf8_lossy(bytes)));
            }
        }
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    /// Starts WRITE_FILE here, as the server's shell would, for `content`.
    fn start_write(dir: &std::path::Path, content: &[u8]) -> std::process::Child {
        let path = dir.join("conf").display().to_string();
        let digest = hex::encode(Sha256::digest(content));
        Command::new("sh")
            .args(["-c", WRITE_FILE, "sh", &path, "", "", "0644", &digest])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh runs")
    }

    /// Runs WRITE_FILE for `content` with `sent` on stdin.
    fn write_locally(dir: &std::path::Path, content: &[u8], sent: &[u8]) -> bool {
        let mut child = start_write(dir, content);
        child.stdin.take().expect("stdin").write_all(sent).expect("write");
        child.wait().expect("sh ends").success()
    }

    fn names_in(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn content_cut_short_is_never_installed_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let content = b"PermitRootLogin no\nPasswordAuthentication no\n";
        assert!(!write_locally(dir.path(), content, &content[..20]), "a cut-short transfer fails");
        assert!(names_in(dir.path()).is_empty(), "nothing installed, no temporary copy left");
        // Copies left by writers that died (this version's and an older one's)
        // are cleared; one whose writer still runs is not.
        let live = format!(".conf.infra-tmp.{}", std::process::id());
        for leftover in [".conf.infra-tmp", ".conf.infra-tmp.2147483646", live.as_str()] {
            std::fs::write(dir.path().join(leftover), b"half a fi").expect("leftover");
        }
        assert!(write_locally(dir.path(), content, content));
        assert_eq!(std::fs::read(dir.path().join("conf")).expect("installed"), content);
        assert_eq!(names_in(dir.path()), [live.as_str(), "conf"]);
    }

    #[test]
    fn two_writes_of_one_path_at_once_both_succeed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, second) = (b"first version\n".as_slice(), b"second version\n".as_slice());
        let mut writers = [start_write(dir.path(), first), start_write(dir.path(), second)];
        // Both have begun (each holds half its content) before either finishes.
        let mut inputs: Vec<_> = writers.iter_mut().map(|w| w.stdin.take().expect("stdin")).collect();
        for (input, content) in inputs.iter_mut().zip([first, second]) {
            input.write_all(&content[..5]).expect("write");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        for (input, content) in inputs.into_iter().zip([first, second]) {
            let mut input = input;
            input.write_all(&content[5..]).expect("write");
        }
        for writer in &mut writers {
            assert!(writer.wait().expect("sh ends").success(), "each write succeeds");
        }
        let installed = std::fs::read(dir.path().join("conf")).expect("installed");
        assert!(installed == first || installed == second, "one whole version: {installed:?}");
        assert_eq!(names_in(dir.path()), ["conf"]);
    }
}
