//! `backup`: paths on a server backed up with restic into a repository (a path
//! on the server, another server over SFTP, an S3 endpoint, anything restic
//! speaks), on a systemd schedule, with retention (`keep { ... }`, applied with
//! `restic forget --prune` after every run), hooks before and after, and a
//! bandwidth limit. `infra backup run|list|verify|status` and `infra restore`
//! act on it through [`act`].
//!
//! Everything a run needs lives on the server (`/etc/infra/backup/NAME/`, one
//! file per setting, read by the runner script `/usr/local/sbin/infra-backup`),
//! so a scheduled run needs nothing from infra. The repository password and
//! environment are secrets: they are written to root-only files and never
//! recorded. State keeps a salted digest of them, and the plan carries them
//! only when that digest changes (or the files went missing on the server).
//! Destroying a backup removes its schedule and settings, never the
//! repository's data.

mod runner;

use infra_core::{AttributeSchema, BlockNesting, ExecOutput, OperationContext, ProviderError, Schema, Type, Value};
use infra_ssh::Connection;
use sha2::{Digest, Sha256};

use crate::facts::{Answer, Facts, Question};
use crate::{set, strings, text};

const SETTINGS: &str = "/etc/infra/backup";
const RETENTION: [&str; 6] = ["last", "hourly", "daily", "weekly", "monthly", "yearly"];

pub fn schema() -> Schema {
    let keep = RETENTION.iter().fold(
        Schema::new("How many snapshots to keep, as restic forget counts them (`--keep-daily 7`, ...)."),
        |schema, k| schema.attribute(k, AttributeSchema::optional(Type::Number)),
    );
    crate::on_server(Schema::new("Paths on a server backed up with restic on a schedule, with retention."))
        .attribute(
            "name",
            AttributeSchema::optional_computed(Type::String)
                .force_new()
                .describe("names its units and settings on the server; default: the resource's name"),
        )
        .attribute("paths", AttributeSchema::required(Type::list(Type::String)).describe("absolute paths to back up"))
        .attribute("exclude", AttributeSchema::optional(Type::list(Type::String)).describe("restic exclude patterns"))
        .attribute(
            "repository",
            AttributeSchema::required(Type::String)
                .describe("a path on the server, sftp:USER@HOST:/PATH, s3:https://HOST/BUCKET, ... (restic's forms)"),
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
                .describe("systemd calendar expression: daily, *-*-* 03:00, ...; \"\" for manual runs only"),
        )
        .attribute(
            "verify",
            AttributeSchema::optional(Type::String)
                .describe("when to verify by itself (restic check, a restore compared with the source): weekly, ..."),
        )
        .attribute(
            "before",
            AttributeSchema::optional(Type::list(Type::String)).describe("argv run before each backup"),
        )
        .attribute("after", AttributeSchema::optional(Type::list(Type::String)).describe("argv run after each backup"))
        .attribute("limit_upload", AttributeSchema::optional(Type::Number).describe("upload limit in KiB/s"))
        .block("keep", BlockNesting::Single, keep)
        .attribute("settings_sha256", AttributeSchema::computed(Type::String))
        .attribute("secrets_digest", AttributeSchema::computed(Type::String))
        .attribute("id", AttributeSchema::computed(Type::String))
}

pub fn validate(config: &Value) -> Vec<ProviderError> {
    let (config, _) = config.unmark();
    let mut errors = Vec::new();
    let mut refuse = |attribute: &str, message: String| errors.push(ProviderError::invalid(attribute, message));
    let name = text(&config, "name");
    if !name.is_empty() && !is_unit_word(name) {
        refuse("name", format!("{name:?} must be letters, digits, `-` and `_`"));
    }
    let paths = strings(&config, "paths");
    if config.get("paths").is_some_and(Value::is_wholly_known) && paths.is_empty() {
        refuse("paths", "a backup needs at least one path".into());
    }
    for (i, path) in paths.iter().enumerate() {
        if !path.starts_with('/') || path.contains('\n') {
            refuse(&format!("paths[{i}]"), format!("{path:?} is not an absolute path on one line"));
        }
    }
    for (i, pattern) in strings(&config, "exclude").iter().enumerate() {
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

fn is_unit_word(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The default name: the resource's address as one unit-name word
/// (`module.db.backup.nightly["a"]` → `db-nightly-a`).
fn name_for(address: &infra_core::ResourceAddress) -> String {
    let text = address.to_string();
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty() && *w != "module" && *w != address.kind)
        .collect();
    words.join("-")
}

/// The settings files of a backup, as written: what a scheduled run reads.
fn settings(config: &Value, name: &str) -> Vec<(String, Vec<u8>)> {
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
    let mut files = vec![
        (file("repository"), text(config, "repository").as_bytes().to_vec()),
        (file("paths"), nul(strings(config, "paths"))),
        (file("exclude"), lines(strings(config, "exclude"))),
        (file("keep"), lines(keep)),
        (file("before"), nul(strings(config, "before"))),
        (file("after"), nul(strings(config, "after"))),
        (file("limit_upload"), limit.unwrap_or_default().into_bytes()),
        (runner::PATH.to_string(), runner::SCRIPT.as_bytes().to_vec()),
    ];
    files.extend(units(config, name));
    files
}

/// The systemd units: the backup's service and timer, and the verify pair.
fn units(config: &Value, name: &str) -> Vec<(String, Vec<u8>)> {
    let mut units = Vec::new();
    for (unit, mode, calendar) in [
        (format!("infra-backup-{name}"), "run", text(config, "schedule")),
        (format!("infra-backup-verify-{name}"), "verify", text(config, "verify")),
    ] {
        if calendar.is_empty() {
            continue;
        }
        let service = format!(
            "# Managed by infra: changes here are drift.\n[Unit]\nDescription=infra backup {name} ({mode})\n\
             Wants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=oneshot\n\
             ExecStart={} {mode} {name}\nNice=10\nIOSchedulingClass=idle\n",
            runner::PATH
        );
        let timer = format!(
            "# Managed by infra: changes here are drift.\n[Unit]\nDescription=infra backup {name} ({mode})\n\n\
             [Timer]\nOnCalendar={calendar}\nAccuracySec=1s\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n"
        );
        units.push((format!("/etc/systemd/system/{unit}.service"), service.into_bytes()));
        units.push((format!("/etc/systemd/system/{unit}.timer"), timer.into_bytes()));
    }
    units
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One digest over the settings files: path and content digest, in order.
fn combined(files: impl Iterator<Item = (String, Option<String>)>) -> Value {
    let mut text = String::new();
    for (path, sha) in files {
        let Some(sha) = sha else { return Value::string("missing") };
        text.push_str(&format!("{path}\0{sha}\n"));
    }
    Value::string(sha256(text.as_bytes()))
}

fn settings_digest(config: &Value, name: &str) -> Value {
    combined(settings(config, name).into_iter().map(|(path, bytes)| (path, Some(sha256(&bytes)))))
}

/// `SALT:DIGEST` of the password and environment. The salt comes from the
/// repository, so plan and apply agree on it and equal passwords of two
/// repositories do not show as equal digests.
fn secrets_digest(config: &Value) -> String {
    let salt = &sha256(text(config, "repository").as_bytes())[..16];
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update([0]);
    hasher.update(text(config, "password").as_bytes());
    hasher.update([0]);
    hasher.update(config.get("environment").map(Value::canonical).unwrap_or(Value::Null).to_json().to_string());
    format!("{salt}:{}", hex::encode(hasher.finalize()))
}

pub fn plan(prior: Option<&Value>, mut proposed: Value) -> Value {
    let (bare, _) = proposed.unmark();
    let name = text(&bare, "name").to_string();
    let known = ["name", "paths", "exclude", "repository", "schedule", "verify", "before", "after", "keep"]
        .iter()
        .all(|k| bare.get(k).is_none_or(Value::is_wholly_known));
    let settings = if known && !name.is_empty() { settings_digest(&bare, &name) } else { Value::Unknown };
    set(&mut proposed, "settings_sha256", settings);
    let known = |k: &str| bare.get(k).is_none_or(Value::is_wholly_known);
    let password_given = bare.get("password").is_some_and(|p| !p.is_null());
    if password_given && known("password") && known("environment") && known("repository") {
        let digest = secrets_digest(&bare);
        if prior.and_then(|p| p.get("secrets_digest")).and_then(Value::as_str) == Some(digest.as_str()) {
            // Unchanged: the secrets stay on the server and out of the plan
            // (as recorded: nothing, marked sensitive).
            for key in ["password", "environment"] {
                set(&mut proposed, key, prior.and_then(|p| p.get(key)).cloned().unwrap_or(Value::Null));
            }
        }
        set(&mut proposed, "secrets_digest", Value::string(digest));
    } else {
        set(&mut proposed, "secrets_digest", Value::Unknown);
    }
    set(&mut proposed, "id", if name.is_empty() { Value::Unknown } else { Value::string(name) });
    proposed
}

fn secret_files(name: &str) -> [String; 2] {
    [format!("{SETTINGS}/{name}/password"), format!("{SETTINGS}/{name}/environment")]
}

pub fn questions(state: &Value) -> Vec<Question> {
    let name = text(state, "name");
    let mut questions: Vec<Question> =
        settings(state, name).into_iter().map(|(path, _)| Question::Path(path)).collect();
    questions.extend(secret_files(name).into_iter().map(Question::Path));
    questions.extend(
        units(state, name)
            .into_iter()
            .filter(|(p, _)| p.ends_with(".timer"))
            .map(|(p, _)| Question::Service(p.rsplit('/').next().unwrap_or_default().to_string())),
    );
    questions
}

/// Settings edited on the server or timers turned off show as a changed
/// digest; a secret file gone makes the plan send the secrets again.
pub fn observed(recorded: &Value, facts: &Facts) -> Option<Value> {
    let name = text(recorded, "name");
    let sha = |path: &str| match facts.answer(&Question::Path(path.to_string())) {
        Answer::Path(p) => p.sha256.clone(),
        _ => None,
    };
    // No settings on the server: the backup is gone.
    sha(&format!("{SETTINGS}/{name}/repository"))?;
    let mut value = recorded.clone();
    let timers_on = units(recorded, name).iter().filter(|(p, _)| p.ends_with(".timer")).all(|(p, _)| {
        let unit = p.rsplit('/').next().unwrap_or_default().to_string();
        matches!(facts.answer(&Question::Service(unit)), Answer::Service { enabled, .. } if enabled == "enabled")
    });
    let files = settings(recorded, name).into_iter().map(|(path, _)| {
        let found = sha(&path);
        (path, found)
    });
    let digest = if timers_on { combined(files) } else { Value::string("timers disabled") };
    set(&mut value, "settings_sha256", digest);
    if secret_files(name).iter().any(|p| sha(p).is_none()) {
        set(&mut value, "secrets_digest", Value::string("missing on the server"));
    }
    Some(value)
}

/// Installs restic, writes the settings (and the secrets when the plan carries
/// them), turns the timers on, and opens the repository: initialising it when
/// there is none, refusing a wrong password.
pub async fn write(connection: &Connection, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
    let (bare, _) = planned.unmark();
    let name = match text(&bare, "name") {
        "" => name_for(&ctx.address),
        given => given.to_string(),
    };
    let mut config = bare.clone();
    set(&mut config, "name", Value::string(&name));
    crate::packages::ensure_installed(connection, &["restic"]).await?;
    connection.run_ok(&format!("preparing backup {name}"), runner::PREPARE, &[&name], &[]).await?;
    for (path, bytes) in settings(&config, &name) {
        let mode = if path == runner::PATH {
            "0755"
        } else if path.starts_with("/etc/systemd") {
            "0644"
        } else {
            "0600"
        };
        crate::fs::put(connection, &path, &bytes, mode, "", "").await?;
    }
    if !bare.get("password").is_none_or(Value::is_null) {
        let environment: Vec<u8> = bare
            .get("environment")
            .and_then(Value::as_object)
            .map(|env| {
                env.iter()
                    .flat_map(|(k, v)| format!("{k}={}\0", v.peel().as_str().unwrap_or_default()).into_bytes())
                    .collect()
            })
            .unwrap_or_default();
        let [password_file, environment_file] = secret_files(&name);
        // The runner's `init` moves it into place once the repository takes it.
        let new_password = format!("{password_file}.new");
        crate::fs::put(connection, &new_password, text(&bare, "password").as_bytes(), "0600", "root", "root").await?;
        crate::fs::put(connection, &environment_file, &environment, "0600", "root", "root").await?;
    }
    let timers: Vec<String> = units(&config, &name)
        .into_iter()
        .filter_map(|(p, _)| p.strip_suffix(".timer").and_then(|p| p.rsplit('/').next()).map(|u| format!("{u}.timer")))
        .collect();
    let mut args = vec![name.as_str()];
    args.extend(timers.iter().map(String::as_str));
    connection.run_ok(&format!("scheduling backup {name}"), runner::SCHEDULE, &args, &[]).await?;
    run_runner(connection, &name, &["init"]).await?;
    // Recorded: the digest of the secrets just written, or, when the plan
    // carried none (they were unchanged), the one it computed; never the secrets.
    let digest = match bare.get("password").is_none_or(Value::is_null) {
        true => planned.get("secrets_digest").cloned().unwrap_or(Value::Null),
        false => Value::string(secrets_digest(&bare)),
    };
    let mut value = planned.clone();
    set(&mut value, "name", Value::string(&name));
    set(&mut value, "id", Value::string(&name));
    set(&mut value, "settings_sha256", settings_digest(&config, &name));
    set(&mut value, "secrets_digest", digest);
    set(&mut value, "password", Value::Null);
    set(&mut value, "environment", Value::Null);
    Ok(value)
}

/// Runs the runner on the server; a failure is its own message (it names the backup).
async fn run_runner(connection: &Connection, name: &str, args: &[&str]) -> Result<ExecOutput, ProviderError> {
    let mut argv = vec![runner::PATH, args[0], name];
    argv.extend(&args[1..]);
    let output = connection.run(runner::INVOKE, &argv, &[]).await?;
    if output.code != 0 {
        let stderr = output.stderr_text();
        let last = stderr.lines().rev().find(|l| l.starts_with("backup ")).unwrap_or(stderr.as_str());
        return Err(ProviderError::failed(format!("{}: {last}", connection.target.name())));
    }
    Ok(ExecOutput { exit_code: 0, stdout: output.stdout, stderr: output.stderr })
}

pub async fn remove(connection: &Connection, prior: &Value) -> Result<(), ProviderError> {
    let name = text(prior, "name");
    connection.run_ok(&format!("removing backup {name}"), runner::REMOVE, &[name], &[]).await.map(|_| ())
}

/// `infra backup run|list|verify|status` and `infra restore` on the server.
pub async fn act(
    connection: &Connection,
    state: &Value,
    action: &str,
    args: &[(String, String)],
) -> Result<ExecOutput, ProviderError> {
    let name = text(state, "name").to_string();
    let arg = |key: &str| args.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    match action {
        "run" | "verify" | "status" => run_runner(connection, &name, &[action]).await,
        "list" => {
            let output = run_runner(connection, &name, &["list"]).await?;
            let table = runner::snapshot_table(&String::from_utf8_lossy(&output.stdout)).ok_or_else(|| {
                ProviderError::failed(format!("backup {name}: restic answered in an unexpected form"))
            })?;
            Ok(ExecOutput { exit_code: 0, stdout: table.into_bytes(), stderr: Vec::new() })
        }
        "restore" => {
            let target = arg("to").ok_or_else(|| ProviderError::invalid("to", "restore needs --to PATH"))?;
            run_runner(connection, &name, &["restore", arg("snapshot").unwrap_or("latest"), target]).await
        }
        other => {
            Err(ProviderError::invalid("", format!("backups can run, list, verify, status and restore, not {other}")))
        }
    }
}

#[cfg(test)]
mod tests;
