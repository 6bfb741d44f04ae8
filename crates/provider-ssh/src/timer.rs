//! `timer`: a command run on a schedule by systemd, as a oneshot service and a
//! timer unit infra writes (`/etc/systemd/system/NAME.{service,timer}`). The
//! plan knows the digest of both units, so a changed schedule or command shows
//! before apply, and a unit edited by hand shows as drift.

use infra_core::{AttributeSchema, ProviderError, Schema, Type, Value};
use sha2::{Digest, Sha256};

use crate::facts::{Answer, Facts, Question};
use infra_ssh::Connection;

pub fn schema() -> Schema {
    crate::on_server(Schema::new("A command systemd runs on a schedule (a oneshot service and its timer)."))
        .attribute("name", AttributeSchema::required(Type::String).force_new().describe("unit name, without suffix"))
        .attribute("command", AttributeSchema::required(Type::list(Type::String)).describe("argv, no shell"))
        .attribute(
            "on_calendar",
            AttributeSchema::required(Type::String).describe("systemd calendar expression: daily, *-*-* 03:00, ..."),
        )
        .attribute("user", AttributeSchema::optional(Type::String).describe("run as this user; default root"))
        .attribute("description", AttributeSchema::optional(Type::String))
        .attribute("enabled", AttributeSchema::optional(Type::Bool).default(Value::Bool(true)))
        .attribute("units_sha256", AttributeSchema::computed(Type::String))
        .attribute("id", AttributeSchema::computed(Type::String))
}

pub fn validate(config: &Value) -> Vec<ProviderError> {
    let mut errors = Vec::new();
    if let Some(name) = config.get("name").and_then(Value::as_str)
        && (name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c)))
    {
        errors.push(ProviderError::invalid("name", format!("{name:?} is not a valid unit name")));
    }
    if config.get("command").and_then(Value::as_list).is_some_and(<[Value]>::is_empty) {
        errors.push(ProviderError::invalid("command", "`command` needs at least the program to run"));
    }
    for key in ["on_calendar", "description", "user"] {
        if config.get(key).and_then(Value::as_str).is_some_and(|v| v.contains('\n')) {
            errors.push(ProviderError::invalid(key, format!("`{key}` is one line")));
        }
    }
    errors
}

/// One argument as systemd's ExecStart reads it: double-quoted, with `\`, `"`
/// escaped and `%` and `$` doubled so systemd expands nothing.
fn systemd_quote(arg: &str) -> String {
    let escaped =
        arg.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").replace('%', "%%").replace('$', "$$");
    format!("\"{escaped}\"")
}

/// The two unit files, as they are written.
fn units(planned: &Value) -> (String, String) {
    let name = planned.text("name");
    let description = match planned.text("description") {
        "" => format!("{name} (managed by infra)"),
        d => d.to_string(),
    };
    let command: Vec<String> = planned.strings("command").iter().map(|a| systemd_quote(a)).collect();
    let user = match planned.text("user") {
        "" => String::new(),
        u => format!("User={u}\n"),
    };
    let service = format!(
        "# Managed by infra: changes here are drift.\n[Unit]\nDescription={description}\n\n[Service]\nType=oneshot\n{user}ExecStart={}\n",
        command.join(" ")
    );
    let timer = format!(
        "# Managed by infra: changes here are drift.\n[Unit]\nDescription={description}\n\n[Timer]\nOnCalendar={}\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n",
        planned.text("on_calendar")
    );
    (service, timer)
}

fn combined(service_sha: &str, timer_sha: &str) -> String {
    hex::encode(Sha256::digest(format!("{service_sha}\n{timer_sha}").as_bytes()))
}

fn paths(name: &str) -> (String, String) {
    (format!("/etc/systemd/system/{name}.service"), format!("/etc/systemd/system/{name}.timer"))
}

pub fn plan(mut proposed: Value) -> Value {
    let known = ["command", "on_calendar", "user", "description", "name"]
        .iter()
        .all(|k| proposed.get(k).is_none_or(Value::is_wholly_known));
    let digest = if known {
        let (service, timer) = units(&proposed.unmark().0);
        let sha = |t: &str| hex::encode(Sha256::digest(t.as_bytes()));
        Value::string(combined(&sha(&service), &sha(&timer)))
    } else {
        Value::Unknown
    };
    let name = proposed.text("name").to_string();
    if let Value::Object(map) = &mut proposed {
        map.insert("units_sha256".into(), digest);
        map.insert("id".into(), Value::string(name));
    }
    proposed
}

pub fn questions(state: &Value) -> Vec<Question> {
    let name = state.text("name");
    let (service, timer) = paths(name);
    vec![Question::Path(service), Question::Path(timer), Question::Service(format!("{name}.timer"))]
}

pub fn observed(recorded: &Value, facts: &Facts) -> Option<Value> {
    let name = recorded.text("name");
    let (service, timer) = paths(name);
    let sha = |path: String| match facts.answer(&Question::Path(path)) {
        Answer::Path(p) => p.sha256.clone(),
        _ => None,
    };
    let (service_sha, timer_sha) = (sha(service)?, sha(timer)?);
    let mut value = recorded.clone();
    if let Value::Object(map) = &mut value {
        map.insert("units_sha256".into(), Value::string(combined(&service_sha, &timer_sha)));
        if let Answer::Service { enabled, .. } = facts.answer(&Question::Service(format!("{name}.timer"))) {
            map.insert("enabled".into(), Value::Bool(enabled == "enabled"));
        }
    }
    Some(value)
}

const ACTIVATE: &str = r#"
set -eu
name=$1 enabled=$2
systemctl daemon-reload
if [ "$enabled" = 1 ]; then systemctl enable --now --quiet -- "$name.timer"; else systemctl disable --now --quiet -- "$name.timer"; fi
"#;

const REMOVE: &str = r#"
set -eu
name=$1
systemctl disable --now --quiet -- "$name.timer" 2>/dev/null || true
rm -f -- "/etc/systemd/system/$name.timer" "/etc/systemd/system/$name.service"
systemctl daemon-reload
"#;

pub async fn write(connection: &Connection, planned: &Value) -> Result<Value, ProviderError> {
    let (bare, _) = planned.unmark();
    let name = bare.text("name");
    let (service, timer) = units(&bare);
    let (service_path, timer_path) = paths(name);
    crate::fs::put(connection, &service_path, service.as_bytes(), "0644", "", "").await?;
    crate::fs::put(connection, &timer_path, timer.as_bytes(), "0644", "", "").await?;
    let enabled = if bare.get("enabled").and_then(Value::as_bool) == Some(false) { "0" } else { "1" };
    connection.run_ok(&format!("activating timer {name}"), ACTIVATE, &[name, enabled], &[]).await?;
    Ok(plan(planned.clone()))
}

pub async fn remove(connection: &Connection, prior: &Value) -> Result<(), ProviderError> {
    let name = prior.text("name");
    connection.run_ok(&format!("removing timer {name}"), REMOVE, &[name], &[]).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_start_expands_nothing() {
        assert_eq!(systemd_quote("a b"), "\"a b\"");
        assert_eq!(systemd_quote("$(reboot) %h \"x\" \\"), "\"$$(reboot) %%h \\\"x\\\" \\\\\"");
    }

    #[test]
    fn units_carry_the_schedule_and_command() {
        let planned = Value::object([
            ("name", Value::string("nightly")),
            ("command", Value::List(vec![Value::string("/usr/bin/touch"), Value::string("/tmp/ran it")])),
            ("on_calendar", Value::string("*-*-* 03:00")),
        ]);
        let (service, timer) = units(&planned);
        assert!(service.contains("ExecStart=\"/usr/bin/touch\" \"/tmp/ran it\"\n"), "{service}");
        assert!(timer.contains("OnCalendar=*-*-* 03:00\n"), "{timer}");
    }
}
