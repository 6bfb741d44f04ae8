//! restic backups as infra runs them, whatever provider carries them out (the
//! `ssh` provider on a server, the `docker` provider in a runner container):
//! the settings files a run reads (`/etc/infra/backup/NAME/`, one file per
//! setting), the runner script that reads them (`runner.rs`; what a schedule
//! runs and what `infra backup ...` runs), and the secrets' handling.
//!
//! Secrets are write-only: the password and environment are written to
//! root-only files and never recorded. State keeps a salted digest of them and
//! the plan carries them only when that digest changes.

pub mod runner;

use infra_core::{AttributeSchema, BlockNesting, ProviderError, Schema, Type, Value};
use sha2::{Digest, Sha256};

pub const SETTINGS: &str = "/etc/infra/backup";
const RETENTION: [&str; 6] = ["last", "hourly", "daily", "weekly", "monthly", "yearly"];

/// What every backup accepts and computes, whichever provider runs it; a
/// provider adds where the data comes from (paths on a server, a volume, a
/// database) and where restic runs.
pub fn schema(base: Schema) -> Schema {
    let keep = RETENTION.iter().fold(
        Schema::new("How many snapshots to keep, as restic forget counts them (`--keep-daily 7`, ...)."),
        |schema, k| schema.attribute(k, AttributeSchema::optional(Type::Number)),
    );
    let text = |what: &'static str| AttributeSchema::optional(Type::String).describe(what);
    base.attribute(
        "name",
        AttributeSchema::optional_computed(Type::String)
            .force_new()
            .describe("names its settings, units or runner; default: the resource's name"),
    )
    .attribute(
        "repository",
        AttributeSchema::required(Type::String).describe(
            "where snapshots go, as restic writes it: a path, sftp:USER@HOST:/PATH, s3:https://HOST/BUCKET, ...",
        ),
    )
    .attribute(
        "password",
        AttributeSchema::required(Type::String)
            .sensitive()
            .describe("the repository's password; never recorded in state"),
    )
    .attribute(
        "environment",
        AttributeSchema::optional(Type::map(Type::String))
            .sensitive()
            .describe("variables restic needs for the repository (AWS_ACCESS_KEY_ID, ...); never recorded"),
    )
    .attribute(
        "schedule",
        AttributeSchema::optional(Type::String)
            .default(Value::string("daily"))
            .describe("systemd calendar expression: daily, *-*-* 03:00, ...; \"\" for runs only when asked"),
    )
    .attribute(
        "verify",
        text("when to verify by itself (restic check, a restore compared with the source): weekly, ..."),
    )
    .attribute("exclude", AttributeSchema::optional(Type::list(Type::String)).describe("restic exclude patterns"))
    .attribute("limit_upload", AttributeSchema::optional(Type::Number).describe("upload limit in KiB/s"))
    .block("keep", BlockNesting::Single, keep)
    .attribute("settings_sha256", AttributeSchema::computed(Type::String))
    .attribute("secrets_digest", AttributeSchema::computed(Type::String))
    .attribute("id", AttributeSchema::computed(Type::String))
}

/// What every backup checks, whatever provider runs it. Errors name the attribute.
pub fn validate(config: &Value) -> Vec<ProviderError> {
    let (config, _) = config.unmark();
    let mut errors = Vec::new();
    let mut refuse = |attribute: &str, message: String| errors.push(ProviderError::invalid(attribute, message));
    let name = config.text("name");
    if !name.is_empty() && !is_unit_word(name) {
        refuse("name", format!("{name:?} must be letters, digits, `-` and `_`"));
    }
    let paths = config.strings("paths");
    for (i, path) in paths.iter().enumerate() {
        if !path.starts_with('/') || path.contains('\n') {
            refuse(&format!("paths[{i}]"), format!("{path:?} is not an absolute path on one line"));
        }
    }
    for (i, pattern) in config.strings("exclude").iter().enumerate() {
        if pattern.contains('\n') || pattern.is_empty() {
            refuse(&format!("exclude[{i}]"), "an exclude pattern is one non-empty line".into());
        }
    }
    for key in config.get("environment").and_then(Value::as_object).into_iter().flat_map(|e| e.keys()) {
        let valid = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            refuse("environment", format!("{key:?} is not an environment variable name"));
        }
    }
    if config.get("password").and_then(Value::as_str).is_some_and(str::is_empty) {
        refuse("password", "the repository password is empty".into());
    }
    for key in ["repository", "schedule", "verify"] {
        if config.get(key).and_then(Value::as_str).is_some_and(|v| v.contains('\n')) {
            refuse(key, format!("`{key}` is one line"));
        }
    }
    if let Some(keep) = config.get("keep").and_then(Value::as_object) {
        for (k, v) in keep {
            if v.as_number().is_some_and(|n| n < 0.0 || n.fract() != 0.0) {
                refuse(&format!("keep.{k}"), format!("keep.{k} must be a whole number of snapshots"));
            }
        }
    }
    for hook in ["before", "after"] {
        if config.get(hook).and_then(Value::as_list).is_some_and(<[Value]>::is_empty) {
            refuse(hook, format!("`{hook}` needs at least the program to run"));
        }
    }
    if config.get("limit_upload").and_then(Value::as_number).is_some_and(|n| n <= 0.0) {
        refuse("limit_upload", "limit_upload is KiB/s, more than 0".into());
    }
    errors
}

pub fn is_unit_word(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The default name: the resource's address as one unit-name word
/// (`module.db.backup.nightly["a"]` → `db-nightly-a`).
pub fn name_for(address: &infra_core::ResourceAddress) -> String {
    let text = address.to_string();
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty() && *w != "module" && *w != address.kind)
        .collect();
    words.join("-")
}

/// The backup's name (the one written, or [`name_for`] its address) and its
/// configuration with that name in it, as a write works with them.
pub fn named(config: &Value, address: &infra_core::ResourceAddress) -> (String, Value) {
    let name = match config.text("name") {
        "" => name_for(address),
        given => given.to_string(),
    };
    let mut config = config.clone();
    config.set("name", Value::string(&name));
    (name, config)
}

/// The settings files of a backup, as written: what a scheduled run reads.
/// Besides the user's attributes, a provider may set `dump` (the argv whose
/// output is the snapshot, e.g. pg_dump), `dump_name` (its file name in the
/// snapshot) and `load` (the argv a restore pipes it into).
pub fn settings(config: &Value, name: &str) -> Vec<(String, Vec<u8>)> {
    let nul = |items: Vec<String>| items.into_iter().flat_map(|i| i.into_bytes().into_iter().chain([0])).collect();
    let lines =
        |items: Vec<String>| items.into_iter().flat_map(|i| i.into_bytes().into_iter().chain([b'\n'])).collect();
    let keep: Vec<String> = RETENTION
        .iter()
        .filter_map(|k| {
            let n = config.get("keep")?.get(k)?.as_number()?;
            Some([format!("--keep-{k}"), format!("{}", n as u64)])
        })
        .flatten()
        .collect();
    let limit = config.get("limit_upload").and_then(Value::as_number).map(|n| format!("{}", n as u64));
    let file = |f: &str| format!("{SETTINGS}/{name}/{f}");
    let files = vec![
        (file("repository"), config.text("repository").as_bytes().to_vec()),
        (file("paths"), nul(config.strings("paths"))),
        (file("exclude"), lines(config.strings("exclude"))),
        (file("keep"), lines(keep)),
        (file("before"), nul(config.strings("before"))),
        (file("after"), nul(config.strings("after"))),
        (file("limit_upload"), limit.unwrap_or_default().into_bytes()),
        (file("dump"), nul(config.strings("dump"))),
        (file("dump_name"), config.text("dump_name").as_bytes().to_vec()),
        (file("load"), nul(config.strings("load"))),
        (file("schedule"), config.text("schedule").as_bytes().to_vec()),
        (file("verify_schedule"), config.text("verify").as_bytes().to_vec()),
        (runner::PATH.to_string(), runner::SCRIPT.as_bytes().to_vec()),
    ];
    files
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One digest over the settings files: path and content digest, in order.
pub fn combined(files: impl Iterator<Item = (String, Option<String>)>) -> Value {
    let mut text = String::new();
    for (path, sha) in files {
        let Some(sha) = sha else { return Value::string("missing") };
        text.push_str(&format!("{path}\0{sha}\n"));
    }
    Value::string(sha256(text.as_bytes()))
}

/// The digest of files as they are written.
pub fn settings_digest(files: &[(String, Vec<u8>)]) -> Value {
    combined(files.iter().map(|(path, bytes)| (path.clone(), Some(sha256(bytes)))))
}

/// `SALT:DIGEST` of the password and environment. The salt comes from the
/// repository, so plan and apply agree on it and equal passwords of two
/// repositories do not show as equal digests.
pub fn secrets_digest(config: &Value) -> String {
    let salt = &sha256(config.text("repository").as_bytes())[..16];
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update([0]);
    hasher.update(config.text("password").as_bytes());
    hasher.update([0]);
    hasher.update(config.get("environment").map(Value::canonical).unwrap_or(Value::Null).to_json().to_string());
    format!("{salt}:{}", hex::encode(hasher.finalize()))
}

/// The secrets part of planning a backup: `secrets_digest` from the
/// password and environment, and, when the recorded digest matches, the
/// secrets left out of the plan (as recorded: nothing).
pub fn plan_secrets(prior: Option<&Value>, proposed: &mut Value) {
    let (bare, _) = proposed.unmark();
    let known = |k: &str| bare.get(k).is_none_or(Value::is_wholly_known);
    let password_given = bare.get("password").is_some_and(|p| !p.is_null());
    if password_given && known("password") && known("environment") && known("repository") {
        let digest = secrets_digest(&bare);
        if prior.and_then(|p| p.get("secrets_digest")).and_then(Value::as_str) == Some(digest.as_str()) {
            for key in SECRETS {
                proposed.set(key, prior.and_then(|p| p.get(key)).cloned().unwrap_or(Value::Null));
            }
        }
        proposed.set("secrets_digest", Value::string(digest));
    } else {
        proposed.set("secrets_digest", Value::Unknown);
    }
}

/// The attributes that are never recorded.
pub const SECRETS: [&str; 2] = ["password", "environment"];

/// Where the secrets live: the password (a new one arrives as
/// `password.new` and replaces it once the repository takes it) and the
/// environment file.
pub fn secret_files(name: &str) -> [String; 2] {
    [format!("{SETTINGS}/{name}/password"), format!("{SETTINGS}/{name}/environment")]
}

/// The files to write when the plan carries the secrets: the new password
/// and the environment (`KEY=VALUE\0` each); `None` when it carries none.
pub fn secret_contents(config: &Value, name: &str) -> Option<Vec<(String, Vec<u8>)>> {
    let password = config.get("password").filter(|p| !p.is_null())?.peel().as_str()?.as_bytes().to_vec();
    let environment: Vec<u8> = config
        .get("environment")
        .and_then(Value::as_object)
        .map(|env| {
            env.iter()
                .flat_map(|(k, v)| format!("{k}={}\0", v.peel().as_str().unwrap_or_default()).into_bytes())
                .collect()
        })
        .unwrap_or_default();
    let [password_file, environment_file] = secret_files(name);
    Some(vec![(format!("{password_file}.new"), password), (environment_file, environment)])
}

/// The runner's argv for one of a backup's operations (`infra backup run`:
/// "run"; `infra restore`: "restore" with `snapshot` and `to`).
pub fn runner_argv(name: &str, action: &str, args: &[(String, String)]) -> Result<Vec<String>, ProviderError> {
    let arg = |key: &str| args.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let mut argv = vec![runner::PATH.to_string(), action.to_string(), name.to_string()];
    match action {
        "init" | "run" | "verify" | "status" | "list" => {}
        "restore" => argv.extend([arg("snapshot").unwrap_or_else(|| "latest".into()), arg("to").unwrap_or_default()]),
        other => {
            return Err(ProviderError::invalid(
                "",
                format!("backups can run, list, verify, status and restore, not {other}"),
            ));
        }
    }
    Ok(argv)
}

/// The runner's own words for a failure: its `backup NAME: ...` line.
pub fn failure(stderr: &str) -> String {
    let stderr = stderr.trim();
    stderr.lines().rev().find(|l| l.starts_with("backup ")).unwrap_or(stderr).to_string()
}

/// `infra backup list`'s table from the runner's output.
pub fn listing(name: &str, stdout: &[u8]) -> Result<Vec<u8>, ProviderError> {
    runner::snapshot_table(&String::from_utf8_lossy(stdout))
        .map(String::into_bytes)
        .ok_or_else(|| ProviderError::failed(format!("backup {name}: restic answered in an unexpected form")))
}
