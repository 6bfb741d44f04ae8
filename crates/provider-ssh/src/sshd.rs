//! `sshd`: settings for the SSH daemon, written as a drop-in
//! (`/etc/ssh/sshd_config.d/60-NAME.conf`), checked with `sshd -t` before the
//! daemon reloads, and proven by a fresh login afterwards: when the new
//! settings would lock infra out, the previous drop-in is put back and the
//! apply fails. A reload never cuts the sessions already open.

use infra_core::{AttributeSchema, ProviderError, Schema, Type, Value};
use sha2::{Digest, Sha256};

use crate::facts::{Answer, Facts, Question};
use infra_ssh::{Connection, Pool, Target};

pub fn schema() -> Schema {
    crate::on_server(Schema::new("Settings of the SSH daemon, as a checked drop-in file."))
        .attribute(
            "name",
            AttributeSchema::optional(Type::String)
                .default(Value::string("infra"))
                .force_new()
                .describe("the drop-in is /etc/ssh/sshd_config.d/60-NAME.conf"),
        )
        .attribute(
            "settings",
            AttributeSchema::required(Type::map(Type::String))
                .describe("keyword → value, e.g. { PasswordAuthentication = \"no\" }"),
        )
        .attribute("content_sha256", AttributeSchema::computed(Type::String))
        .attribute("id", AttributeSchema::computed(Type::String))
}

fn name(v: &Value) -> &str {
    v.get("name").and_then(Value::as_str).unwrap_or("infra")
}

fn path(v: &Value) -> String {
    format!("/etc/ssh/sshd_config.d/60-{}.conf", name(v))
}

pub fn validate(config: &Value) -> Vec<ProviderError> {
    let mut errors = Vec::new();
    if !name(config).chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c)) {
        errors.push(ProviderError::invalid("name", format!("{:?} is not a valid drop-in name", name(config))));
    }
    for (key, value) in config.get("settings").and_then(Value::as_object).into_iter().flatten() {
        if !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            errors.push(ProviderError::invalid("settings", format!("{key:?} is not an sshd keyword")));
        }
        if value.as_str().is_some_and(|v| v.contains(['\n', '\r'])) {
            errors.push(ProviderError::invalid("settings", format!("the value of {key} is one line")));
        }
    }
    errors
}

/// The drop-in as written: one `Keyword value` line per setting, in keyword order.
fn content(planned: &Value) -> String {
    let mut text = String::from("# Managed by infra: changes here are drift.\n");
    for (key, value) in planned.get("settings").and_then(Value::as_object).into_iter().flatten() {
        text.push_str(&format!("{key} {}\n", value.to_template_string().unwrap_or_default()));
    }
    text
}

pub fn plan(mut proposed: Value) -> Value {
    let digest = if proposed.get("settings").is_none_or(Value::is_wholly_known) {
        Value::string(hex::encode(Sha256::digest(content(&proposed.unmark().0).as_bytes())))
    } else {
        Value::Unknown
    };
    let id = path(&proposed);
    if let Value::Object(map) = &mut proposed {
        map.insert("content_sha256".into(), digest);
        map.insert("id".into(), Value::string(id));
    }
    proposed
}

pub fn question(state: &Value) -> Question {
    Question::Path(path(state))
}

pub fn observed(recorded: &Value, facts: &Facts) -> Option<Value> {
    let Answer::Path(found) = facts.answer(&question(recorded)) else { return None };
    let mut value = recorded.clone();
    if let (Value::Object(map), Some(sum)) = (&mut value, &found.sha256) {
        map.insert("content_sha256".into(), Value::string(sum));
    }
    Some(value)
}

/// Puts the new drop-in in place, keeping the previous one; checks the whole
/// configuration; reloads. On a failed check the previous drop-in returns.
const INSTALL: &str = r#"
set -eu
f=$1
t=$(mktemp /etc/ssh/.infra-sshd-XXXXXX)
trap 'rm -f -- "$t"' EXIT
cat > "$t"
chmod 0644 "$t"
mkdir -p /etc/ssh/sshd_config.d
if [ -f "$f" ]; then cp -p -- "$f" "$f.infra-previous"; else rm -f -- "$f.infra-previous"; fi
mv -f -- "$t" "$f"
if ! out=$(sshd -t 2>&1); then
  if [ -f "$f.infra-previous" ]; then mv -f -- "$f.infra-previous" "$f"; else rm -f -- "$f"; fi
  printf 'sshd -t refused the new settings, the previous ones stay: %s\n' "$out" >&2
  exit 1
fi
"#;

/// Reloads sshd: systemd's unit where there is one, else a HUP to the daemon;
/// then waits until the daemon has re-executed with the new settings. A HUP
/// only asks: sshd closes its listening sockets, re-executes itself and opens
/// new ones, and a login that came first still meets the old settings (a
/// lock-out would then pass the login test). New sockets mean the new daemon.
const RELOAD: &str = r#"
daemon=$(systemctl show -p MainPID --value ssh 2>/dev/null || true)
[ -n "$daemon" ] && [ "$daemon" != 0 ] || daemon=$(cat /run/sshd.pid 2>/dev/null || pgrep -o -x sshd || true)
# The daemon's listening sockets, by inode (column 10 of /proc/net/tcp, state 0A).
sockets() {
  listening=$(awk '$4 == "0A" {print $10}' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  ls -l "/proc/$daemon/fd" 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\].*/\1/p' \
    | grep -Fx "$listening" | sort | tr '\n' ' '
}
before=$(sockets)
if systemctl is-active --quiet ssh 2>/dev/null; then systemctl reload ssh
elif [ -f /run/sshd.pid ]; then kill -HUP "$(cat /run/sshd.pid)"
else pkill -HUP -x sshd
fi
[ -n "$before" ] || { sleep 1; exit 0; }
for _ in $(seq 1 200); do
  now=$(sockets)
  if [ -n "$now" ] && [ "$now" != "$before" ]; then exit 0; fi
  sleep 0.05
done
echo "sshd did not restart with the new settings within 10 s" >&2
exit 1
"#;

/// Puts the previous drop-in back (or none) after a failed login test.
const RESTORE: &str = r#"
f=$1
if [ -f "$f.infra-previous" ]; then mv -f -- "$f.infra-previous" "$f"; else rm -f -- "$f"; fi
"#;

pub async fn write(
    pool: &Pool,
    connection: &Connection,
    target: &Target,
    planned: &Value,
) -> Result<Value, ProviderError> {
    let (bare, _) = planned.unmark();
    let file = path(&bare);
    connection.run_ok(&format!("installing {file}"), INSTALL, &[&file], content(&bare).as_bytes()).await?;
    connection.run_ok("reloading sshd", RELOAD, &[], &[]).await?;
    // A new login must still work; the open connection keeps us in to undo it.
    if let Err(e) = pool.probe(target).await {
        connection.run_ok("restoring the previous sshd settings", RESTORE, &[&file], &[]).await?;
        connection.run_ok("reloading sshd", RELOAD, &[], &[]).await?;
        return Err(ProviderError::failed(format!(
            "{}: after the new sshd settings infra could not log in again ({}); the previous settings are back",
            connection.target.name(),
            e.message
        )));
    }
    Ok(plan(planned.clone()))
}

pub async fn remove(connection: &Connection, prior: &Value) -> Result<(), ProviderError> {
    let file = path(prior);
    let script = "rm -f -- \"$1\" \"$1.infra-previous\"";
    connection.run_ok(&format!("removing {file}"), script, &[&file], &[]).await?;
    connection.run_ok("reloading sshd", RELOAD, &[], &[]).await.map(|_| ())
}
