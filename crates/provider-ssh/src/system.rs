//! `service` (a systemd unit: enabled at boot, running now, restarted when
//! something it depends on changes) and `sysctl` (a kernel setting, applied
//! now and kept across reboots in /etc/sysctl.d).

use infra_core::{AttributeSchema, ProviderError, Schema, Type, Value};

use crate::facts::{Answer, Facts, Question};
use crate::on_server;
use infra_ssh::Connection;

pub fn service_schema() -> Schema {
    on_server(Schema::new("A systemd service on a server."))
        .attribute("name", AttributeSchema::required(Type::String).force_new().describe("unit name, e.g. nginx"))
        .attribute(
            "enabled",
            AttributeSchema::optional(Type::Bool).default(Value::Bool(true)).describe("started at boot"),
        )
        .attribute("running", AttributeSchema::optional(Type::Bool).default(Value::Bool(true)))
        .attribute(
            "restart_on",
            AttributeSchema::optional(Type::list(Type::String))
                .describe("values whose change restarts it, e.g. [file.config.content_sha256]"),
        )
        .attribute("id", AttributeSchema::computed(Type::String))
}

pub fn sysctl_schema() -> Schema {
    on_server(Schema::new("A kernel setting, applied now and at every boot."))
        .attribute("name", AttributeSchema::required(Type::String).force_new().describe("e.g. net.ipv4.ip_forward"))
        .attribute("value", AttributeSchema::required(Type::String))
        .attribute("id", AttributeSchema::computed(Type::String))
}

pub fn validate(kind: &str, config: &Value) -> Vec<ProviderError> {
    let Some(name) = config.get("name").and_then(Value::as_str) else { return Vec::new() };
    let valid = match kind {
        "service" => !name.starts_with('-') && name.chars().all(|c| c.is_ascii_alphanumeric() || "@._-:\\".contains(c)),
        _ => !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c)),
    };
    if valid {
        Vec::new()
    } else {
        vec![ProviderError::invalid("name", format!("{name:?} is not a valid {kind} name"))]
    }
}

pub fn plan(kind: &str, mut proposed: Value) -> Value {
    let name = proposed.text("name").to_string();
    if kind == "sysctl" {
        // sysctl prints values separated by tabs; compare them as words.
        let value = proposed.text("value").split_whitespace().collect::<Vec<_>>().join(" ");
        proposed.set("value", Value::string(value));
    }
    proposed.set("id", Value::string(name));
    proposed
}

pub fn question(kind: &str, state: &Value) -> Question {
    let name = state.text("name").to_string();
    if kind == "service" { Question::Service(name) } else { Question::Sysctl(name) }
}

pub fn observed(kind: &str, recorded: &Value, facts: &Facts) -> Option<Value> {
    let mut value = recorded.clone();
    match facts.answer(&question(kind, recorded)) {
        Answer::Service { enabled, active } => {
            value.set("enabled", Value::Bool(enabled == "enabled"));
            value.set("running", Value::Bool(active == "active"));
        }
        Answer::Sysctl { value: live, persisted } => {
            // Not kept for the next boot counts as drifted too.
            let shown = if *persisted { live.clone() } else { format!("{live} (not persisted)") };
            value.set("value", Value::string(shown));
        }
        _ => return None,
    }
    Some(value)
}

const ENSURE_SERVICE: &str = r#"
set -eu
name=$1 enabled=$2 running=$3 restart=$4
# `systemctl enable` reloads systemd (about a second, more through Debian's SysV
# wrapper) even when the unit is enabled already: ask first, change only what differs.
state=$(systemctl is-enabled -- "$name" 2>/dev/null || true)
if [ "$enabled" = 1 ]; then
  [ "$state" = enabled ] || systemctl enable --quiet -- "$name"
else
  [ "$state" = disabled ] || systemctl disable --quiet -- "$name"
fi
if [ "$running" = 1 ]; then
  if [ "$restart" = 1 ]; then systemctl restart -- "$name"; else systemctl start -- "$name"; fi
  systemctl is-active --quiet -- "$name" || { systemctl status --no-pager -- "$name" >&2 || true; exit 1; }
else
  systemctl stop -- "$name"
fi
"#;

const ENSURE_SYSCTL: &str = r#"
set -eu
name=$1 value=$2
file=/etc/sysctl.d/60-infra-${name//\//.}.conf
printf '%s = %s\n' "$name" "$value" > "$file.tmp"
mv -f -- "$file.tmp" "$file"
sysctl -q -w -- "$name=$value"
"#;

const REMOVE_SYSCTL: &str = r#"
name=$1
rm -f -- "/etc/sysctl.d/60-infra-${name//\//.}.conf"
"#;

pub async fn write(
    connection: &Connection,
    kind: &str,
    prior: Option<&Value>,
    planned: &Value,
) -> Result<Value, ProviderError> {
    let (bare, _) = planned.unmark();
    let name = bare.text("name");
    if kind == "service" {
        let flag = |k: &str| if bare.get(k).and_then(Value::as_bool) == Some(false) { "0" } else { "1" };
        let triggers = |v: &Value| v.get("restart_on").map(Value::canonical).unwrap_or_default();
        let restart = prior.is_some_and(|p| triggers(p) != triggers(&bare));
        let args = [name, flag("enabled"), flag("running"), if restart { "1" } else { "0" }];
        connection.run_ok(&format!("ensuring service {name}"), ENSURE_SERVICE, &args, &[]).await?;
    } else {
        let value = bare.text("value");
        connection.run_ok(&format!("setting {name}"), ENSURE_SYSCTL, &[name, value], &[]).await?;
    }
    Ok(plan(kind, planned.clone()))
}

pub async fn remove(connection: &Connection, kind: &str, prior: &Value) -> Result<(), ProviderError> {
    // A service is left as it is: removing the declaration does not stop software.
    if kind == "sysctl" {
        let name = prior.text("name");
        connection.run_ok(&format!("removing {name} from sysctl.d"), REMOVE_SYSCTL, &[name], &[]).await?;
    }
    Ok(())
}
