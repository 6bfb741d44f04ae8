//! `group`, `user` and `authorized_key` on a server, through the distribution's
//! own tools (groupadd, useradd, usermod). Destroying a user keeps its home
//! directory: data is not infra's to throw away.

use infra_core::{AttributeSchema, ProviderError, Schema, Type, Value};

use crate::facts::{Answer, Facts, Question};
use crate::on_server;
use infra_ssh::Connection;

pub fn group_schema() -> Schema {
    on_server(Schema::new("A group on a server."))
        .attribute("name", AttributeSchema::required(Type::String).force_new())
        .attribute("gid", AttributeSchema::optional_computed(Type::Number))
        .attribute("system", AttributeSchema::optional(Type::Bool).default(Value::Bool(false)).describe("at creation"))
        .attribute("id", AttributeSchema::computed(Type::String))
}

pub fn user_schema() -> Schema {
    on_server(Schema::new("A user account on a server; destroying it keeps its home directory."))
        .attribute("name", AttributeSchema::required(Type::String).force_new())
        .attribute("uid", AttributeSchema::optional_computed(Type::Number))
        .attribute("group", AttributeSchema::optional_computed(Type::String).describe("primary group"))
        .attribute(
            "groups",
            AttributeSchema::optional(Type::list(Type::String))
                .describe("supplementary groups, exactly these; left out: not managed"),
        )
        .attribute("shell", AttributeSchema::optional_computed(Type::String))
        .attribute("home", AttributeSchema::optional_computed(Type::String))
        .attribute("system", AttributeSchema::optional(Type::Bool).default(Value::Bool(false)).describe("at creation"))
        .attribute("id", AttributeSchema::computed(Type::String))
}

pub fn key_schema() -> Schema {
    on_server(Schema::new("A public key in a user's ~/.ssh/authorized_keys."))
        .attribute("user", AttributeSchema::required(Type::String).force_new())
        .attribute("key", AttributeSchema::required(Type::String).force_new().describe("one authorized_keys line"))
        .attribute("id", AttributeSchema::computed(Type::String))
}

fn number(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_number).map(|n| format!("{}", n as u64)).unwrap_or_default()
}

fn flag(v: &Value, k: &str) -> &'static str {
    if v.get(k).and_then(Value::as_bool) == Some(true) { "1" } else { "" }
}

pub fn validate(kind: &str, config: &Value) -> Vec<ProviderError> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 32
            && !n.starts_with('-')
            && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    let mut errors = Vec::new();
    for key in ["name", "user", "group"] {
        if let Some(name) = config.get(key).and_then(Value::as_str)
            && !name_ok(name)
        {
            errors.push(ProviderError::invalid(key, format!("{name:?} is not a valid user or group name")));
        }
    }
    if kind == "authorized_key"
        && let Some(key) = config.get("key").and_then(Value::as_str)
        && (key.trim().is_empty() || key.trim().contains('\n'))
    {
        errors.push(ProviderError::invalid("key", "`key` is one authorized_keys line"));
    }
    errors
}

/// The id is known at plan time.
pub fn plan(kind: &str, mut proposed: Value) -> Value {
    let id = match kind {
        "authorized_key" => {
            let key = proposed.text("key").trim().to_string();
            proposed.set("key", Value::string(&key));
            let comment = key.split_whitespace().nth(2).unwrap_or_default();
            format!("{}:{}", proposed.text("user"), comment)
        }
        _ => proposed.text("name").to_string(),
    };
    proposed.set("id", Value::string(id));
    proposed
}

pub fn question(kind: &str, state: &Value) -> Question {
    match kind {
        "group" => Question::Group(state.text("name").to_string()),
        "user" => Question::User(state.text("name").to_string()),
        _ => Question::Key { user: state.text("user").to_string(), key: state.text("key").trim().to_string() },
    }
}

pub fn observed(kind: &str, recorded: &Value, facts: &Facts) -> Option<Value> {
    let mut value = recorded.clone();
    match facts.answer(&question(kind, recorded)) {
        Answer::Group { gid } => value.set("gid", Value::Number(f64::from(*gid))),
        Answer::User(user) => {
            value.set("uid", Value::Number(f64::from(user.uid)));
            value.set("group", Value::string(&user.group));
            value.set("shell", Value::string(&user.shell));
            value.set("home", Value::string(&user.home));
            if recorded.get("groups").is_some_and(|g| !g.is_null()) {
                value.set("groups", Value::List(user.groups.iter().map(Value::string).collect()));
            }
        }
        Answer::KeyPresent => {}
        _ => return None,
    }
    Some(value)
}

const ENSURE_GROUP: &str = r#"
set -eu
name=$1 gid=$2 system=$3
set --
if [ -n "$gid" ]; then set -- "$@" --gid "$gid"; fi
if getent group -- "$name" >/dev/null; then
  if [ $# -gt 0 ]; then groupmod "$@" -- "$name"; fi
else
  if [ -n "$system" ]; then set -- "$@" --system; fi
  groupadd "$@" -- "$name"
fi
"#;

const ENSURE_USER: &str = r#"
set -eu
name=$1 uid=$2 group=$3 manage_groups=$4 groups=$5 shell=$6 home=$7 system=$8
set --
if [ -n "$uid" ]; then set -- "$@" --uid "$uid"; fi
if [ -n "$group" ]; then set -- "$@" --gid "$group"; fi
if [ -n "$shell" ]; then set -- "$@" --shell "$shell"; fi
if [ -n "$manage_groups" ]; then set -- "$@" --groups "$groups"; fi
if getent passwd -- "$name" >/dev/null; then
  if [ -n "$home" ]; then set -- "$@" --home "$home" --move-home; fi
  if [ $# -gt 0 ]; then usermod "$@" -- "$name"; fi
else
  if [ -n "$home" ]; then set -- "$@" --home-dir "$home"; fi
  if [ -n "$system" ]; then set -- "$@" --system; else set -- "$@" --create-home; fi
  if [ -z "$group" ]; then set -- "$@" --user-group; fi
  if [ -z "$shell" ]; then set -- "$@" --shell /bin/bash; fi
  useradd "$@" -- "$name"
fi
"#;

/// Adds the key line from stdin once; the directory and file get the modes sshd insists on.
const ADD_KEY: &str = r#"
set -eu
user=$1
key=$(cat)
home=$(getent passwd -- "$user" | cut -d: -f6)
if [ -z "$home" ]; then echo "there is no user $user" >&2; exit 1; fi
group=$(id -gn -- "$user")
install -d -m 700 -o "$user" -g "$group" -- "$home/.ssh"
f=$home/.ssh/authorized_keys
touch -- "$f"
chown -- "$user:$group" "$f"
chmod 600 -- "$f"
grep -qxF -- "$key" "$f" || printf '%s\n' "$key" >> "$f"
"#;

const REMOVE_KEY: &str = r#"
set -eu
user=$1
key=$(cat)
home=$(getent passwd -- "$user" | cut -d: -f6)
f=$home/.ssh/authorized_keys
if [ -z "$home" ] || [ ! -f "$f" ]; then exit 0; fi
kept=$(grep -vxF -- "$key" "$f" || true)
if [ -n "$kept" ]; then printf '%s\n' "$kept" > "$f"; else : > "$f"; fi
"#;

/// Creates or updates, then reads back what the server made of it.
pub async fn write(connection: &Connection, kind: &str, planned: &Value) -> Result<Value, ProviderError> {
    let (bare, _) = planned.unmark();
    let name = bare.text("name");
    match kind {
        "group" => {
            let args = [name, &number(&bare, "gid"), flag(&bare, "system")];
            connection.run_ok(&format!("ensuring group {name}"), ENSURE_GROUP, &args, &[]).await?;
        }
        "user" => {
            let groups = bare.strings("groups");
            let managed = if bare.get("groups").is_some_and(|g| !g.is_null()) { "1" } else { "" };
            let args = [
                name,
                &number(&bare, "uid"),
                bare.text("group"),
                managed,
                &groups.join(","),
                bare.text("shell"),
                bare.text("home"),
                flag(&bare, "system"),
            ];
            connection.run_ok(&format!("ensuring user {name}"), ENSURE_USER, &args, &[]).await?;
        }
        _ => {
            let user = bare.text("user");
            let key = bare.text("key").trim();
            let what = format!("authorising a key for {user}");
            connection.run_ok(&what, ADD_KEY, &[user], key.as_bytes()).await?;
        }
    }
    let planned = plan(kind, planned.clone());
    let facts = crate::facts::gather(connection, &[question(kind, &planned)]).await?;
    observed(kind, &planned, &facts).ok_or_else(|| {
        ProviderError::failed(format!("{}: {kind} {name} is not there after creating it", connection.target.name()))
    })
}

pub async fn remove(connection: &Connection, kind: &str, prior: &Value) -> Result<(), ProviderError> {
    let name = prior.text("name");
    let (what, script, args, stdin): (String, &str, Vec<&str>, &[u8]) = match kind {
        "group" => (
            format!("removing group {name}"),
            "getent group -- \"$1\" >/dev/null || exit 0; groupdel -- \"$1\"",
            vec![name],
            &[],
        ),
        "user" => (
            format!("removing user {name}"),
            "getent passwd -- \"$1\" >/dev/null || exit 0; userdel -- \"$1\"",
            vec![name],
            &[],
        ),
        _ => {
            let user = prior.text("user");
            (format!("removing a key of {user}"), REMOVE_KEY, vec![user], prior.text("key").trim().as_bytes())
        }
    };
    connection.run_ok(&what, script, &args, stdin).await.map(|_| ())
}
