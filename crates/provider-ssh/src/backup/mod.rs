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

mod scripts;

use infra_core::{AttributeSchema, ExecOutput, OperationContext, ProviderError, Schema, Type, Value};
use infra_ssh::Connection;

use crate::facts::{Answer, Facts, Question};

use infra_restic::{SETTINGS, runner, secret_files};

pub fn schema() -> Schema {
    infra_restic::schema(crate::on_server(Schema::new(
        "Paths on a server backed up with restic on a systemd schedule, with retention.",
    )))
    .attribute("paths", AttributeSchema::required(Type::list(Type::String)).describe("absolute paths to back up"))
    .attribute("before", AttributeSchema::optional(Type::list(Type::String)).describe("argv run before each backup"))
    .attribute("after", AttributeSchema::optional(Type::list(Type::String)).describe("argv run after each backup"))
}

pub fn validate(config: &Value) -> Vec<ProviderError> {
    let mut errors = infra_restic::validate(config);
    let (config, _) = config.unmark();
    if config.get("paths").is_some_and(Value::is_wholly_known) && config.strings("paths").is_empty() {
        errors.push(ProviderError::invalid("paths", "a backup needs at least one path"));
    }
    errors
}

/// The files of a backup on a server: its settings and its systemd units.
fn settings(config: &Value, name: &str) -> Vec<(String, Vec<u8>)> {
    let mut files = infra_restic::settings(config, name);
    files.extend(units(config, name));
    files
}

/// The systemd units: the backup's service and timer, and the verify pair.
fn units(config: &Value, name: &str) -> Vec<(String, Vec<u8>)> {
    let mut units = Vec::new();
    for (unit, mode, calendar) in [
        (format!("infra-backup-{name}"), "run", config.text("schedule")),
        (format!("infra-backup-verify-{name}"), "verify", config.text("verify")),
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

fn settings_digest(config: &Value, name: &str) -> Value {
    infra_restic::settings_digest(&settings(config, name))
}

pub fn plan(prior: Option<&Value>, mut proposed: Value) -> Value {
    let (bare, _) = proposed.unmark();
    let name = bare.text("name").to_string();
    let known = ["name", "paths", "exclude", "repository", "schedule", "verify", "before", "after", "keep"]
        .iter()
        .all(|k| bare.get(k).is_none_or(Value::is_wholly_known));
    let settings = if known && !name.is_empty() { settings_digest(&bare, &name) } else { Value::Unknown };
    proposed.set("settings_sha256", settings);
    infra_restic::plan_secrets(prior, &mut proposed);
    proposed.set("id", if name.is_empty() { Value::Unknown } else { Value::string(name) });
    proposed
}

pub fn questions(state: &Value) -> Vec<Question> {
    let name = state.text("name");
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
    let name = recorded.text("name");
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
    let digest = if timers_on { infra_restic::combined(files) } else { Value::string("timers disabled") };
    value.set("settings_sha256", digest);
    if secret_files(name).iter().any(|p| sha(p).is_none()) {
        value.set("secrets_digest", Value::string("missing on the server"));
    }
    Some(value)
}

/// Installs restic, writes the settings (and the secrets when the plan carries
/// them), turns the timers on, and opens the repository: initialising it when
/// there is none, refusing a wrong password.
pub async fn write(connection: &Connection, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
    let (bare, _) = planned.unmark();
    let (name, config) = infra_restic::named(&bare, &ctx.address);
    crate::packages::ensure_installed(connection, &["restic"]).await?;
    connection.run_ok(&format!("preparing backup {name}"), scripts::PREPARE, &[&name], &[]).await?;
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
    // The new password as password.new: the runner's `init` moves it into
    // place once the repository takes it.
    for (path, bytes) in infra_restic::secret_contents(&bare, &name).unwrap_or_default() {
        crate::fs::put(connection, &path, &bytes, "0600", "root", "root").await?;
    }
    let timers: Vec<String> = units(&config, &name)
        .into_iter()
        .filter_map(|(p, _)| p.strip_suffix(".timer").and_then(|p| p.rsplit('/').next()).map(|u| format!("{u}.timer")))
        .collect();
    let mut args = vec![name.as_str()];
    args.extend(timers.iter().map(String::as_str));
    connection.run_ok(&format!("scheduling backup {name}"), scripts::SCHEDULE, &args, &[]).await?;
    run_runner(connection, &infra_restic::runner_argv(&name, "init", &[])?).await?;
    // Recorded: the digest of the secrets just written, or, when the plan
    // carried none (they were unchanged), the one it computed; never the secrets.
    let digest = match bare.get("password").is_none_or(Value::is_null) {
        true => planned.get("secrets_digest").cloned().unwrap_or(Value::Null),
        false => Value::string(infra_restic::secrets_digest(&bare)),
    };
    let mut value = planned.clone();
    value.set("name", Value::string(&name));
    value.set("id", Value::string(&name));
    value.set("settings_sha256", settings_digest(&config, &name));
    value.set("secrets_digest", digest);
    value.set("password", Value::Null);
    value.set("environment", Value::Null);
    Ok(value)
}

/// Runs the runner on the server; a failure is its own message (it names the backup).
async fn run_runner(connection: &Connection, argv: &[String]) -> Result<ExecOutput, ProviderError> {
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let output = connection.run(scripts::INVOKE, &argv, &[]).await?;
    if output.code != 0 {
        let why = infra_restic::failure(&output.stderr_text());
        return Err(ProviderError::failed(format!("{}: {why}", connection.target.name())));
    }
    Ok(ExecOutput { exit_code: 0, stdout: output.stdout, stderr: output.stderr })
}

pub async fn remove(connection: &Connection, prior: &Value) -> Result<(), ProviderError> {
    let name = prior.text("name");
    connection.run_ok(&format!("removing backup {name}"), scripts::REMOVE, &[name], &[]).await.map(|_| ())
}

/// `infra backup run|list|verify|status` and `infra restore` on the server.
pub async fn act(
    connection: &Connection,
    state: &Value,
    action: &str,
    args: &[(String, String)],
) -> Result<ExecOutput, ProviderError> {
    let name = state.text("name");
    if action == "restore" && !args.iter().any(|(k, v)| k == "to" && !v.is_empty()) {
        return Err(ProviderError::invalid("to", "restore needs --to PATH: where on the server the files go"));
    }
    let mut output = run_runner(connection, &infra_restic::runner_argv(name, action, args)?).await?;
    if action == "list" {
        output.stdout = infra_restic::listing(name, &output.stdout)?;
    }
    Ok(output)
}

#[cfg(test)]
mod tests;
