//! `firewall`: a server's packet filter as one nftables table, planned rule by
//! rule and loaded without ever locking infra out.
//!
//! Loading is all or nothing (`nft -f` of the whole table, checked with
//! `nft -c` first). Before it, the table as it was is saved and a rollback is
//! armed *on the server* (a transient systemd timer, or a detached sleeper
//! where systemd is not running): if infra cannot open a fresh SSH connection
//! afterwards, the server puts the old rules back by itself, whatever happened
//! to infra. Only a fresh login that succeeds disarms it and makes the rules
//! persistent (`/etc/infra/firewall.nft`, included from `/etc/nftables.conf`).
//!
//! Drift is read from `nft list table inet infra`: the listing right after a
//! load is recorded (`loaded`), refresh reads it again (`live`), and a
//! difference plans a reload that puts `live` back to `loaded`.

mod nft;

use std::time::Duration;

use infra_core::{AttributeSchema, OperationContext, ProviderError, Schema, Type, Value};
use infra_firewall::rules;
use infra_ssh::{Connection, Pool, Target};

use crate::facts::{Answer, Facts, Question};
use crate::on_server;

/// What the user writes; a change to any of it reloads the table.
const CONFIG: [&str; 8] =
    ["input_policy", "forward_policy", "output_policy", "keep_ssh", "docker", "log_dropped", "set", "rule"];

pub fn schema() -> Schema {
    let flag = |default: bool, what| AttributeSchema::optional(Type::Bool).default(Value::Bool(default)).describe(what);
    infra_firewall::schema(on_server(Schema::new(
        "The server's firewall: one nftables table, loaded with a rollback armed.",
    )))
    .attribute("docker", flag(false, "the server runs Docker: let containers reach out through their bridges"))
    .attribute("log_dropped", flag(false, "log dropped packets (10/minute)"))
    .attribute(
        "rollback_seconds",
        AttributeSchema::optional(Type::Number)
            .default(Value::Number(30.0))
            .describe("how long the server waits for infra to log in again before it restores the old rules"),
    )
    .attribute("ssh_port", AttributeSchema::computed(Type::Number))
    .attribute("loaded", AttributeSchema::computed(Type::list(Type::String)))
    .attribute("live", AttributeSchema::computed(Type::list(Type::String)))
    .attribute("id", AttributeSchema::computed(Type::String))
}

pub fn validate(config: &Value) -> Vec<ProviderError> {
    let mut errors = rules::read(config).err().unwrap_or_default();
    if let Some(seconds) = config.get("rollback_seconds").and_then(Value::as_number)
        && !(20.0..=3600.0).contains(&seconds)
    {
        errors.push(ProviderError::invalid(
            "rollback_seconds",
            format!("rollback_seconds is {seconds}; give 20 to 3600 (infra needs time to log in again)"),
        ));
    }
    errors
}

/// A change to the rules reloads them (their listing is known after apply);
/// rules changed on the server by hand plan a reload back to what was loaded.
pub fn plan(prior: Option<&Value>, mut proposed: Value) -> Value {
    let canonical = |v: &Value, k: &str| v.get(k).map(Value::canonical).unwrap_or(Value::Null);
    let changed = prior.is_none_or(|p| CONFIG.iter().any(|k| canonical(p, k) != canonical(&proposed, k)));
    if changed {
        proposed.set("loaded", Value::Unknown);
        proposed.set("live", Value::Unknown);
    } else if let Some(loaded) = prior.and_then(|p| p.get("loaded")).cloned() {
        proposed.set("live", loaded);
    }
    if prior.is_none() {
        proposed.set("ssh_port", Value::Unknown);
    }
    proposed.set("id", Value::string(format!("inet {}", nft::TABLE)));
    proposed
}

pub fn question() -> Question {
    Question::NftTable(nft::TABLE.to_string())
}

pub fn observed(recorded: &Value, facts: &Facts) -> Option<Value> {
    let Answer::Content(listing) = facts.answer(&question()) else { return None };
    let mut value = recorded.clone();
    value.set("live", lines(&String::from_utf8_lossy(listing)));
    Some(value)
}

/// `nft list table` as one entry per line, each named by its chain or set
/// (`input: tcp dport 22 accept`), so a drift diff says where a rule is.
fn lines(listing: &str) -> Value {
    let mut within = String::new();
    let mut out = Vec::new();
    for line in listing.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(header) = line.strip_suffix(" {") {
            within = header.rsplit(' ').next().unwrap_or_default().to_string();
            if header.starts_with("table ") {
                within.clear();
            }
        } else if line == "}" {
            within.clear();
        } else {
            out.push(Value::string(format!("{within}: {line}")));
        }
    }
    Value::List(out)
}

const SCRIPT: &str = r#"
set -euo pipefail
mode=$1 seconds=${2:-30}
dir=/var/lib/infra/firewall
persisted=/etc/infra/firewall.nft
conf=/etc/nftables.conf
include="include \"$persisted\""
systemd=0; [ -d /run/systemd/system ] && systemd=1
disarm() {
  if [ "$systemd" = 1 ]; then
    systemctl stop infra-firewall-rollback.timer infra-firewall-rollback.service >/dev/null 2>&1 || true
    systemctl reset-failed infra-firewall-rollback.timer infra-firewall-rollback.service >/dev/null 2>&1 || true
  fi
  if [ -f "$dir/rollback.pid" ]; then kill "$(cat "$dir/rollback.pid")" 2>/dev/null || true; rm -f "$dir/rollback.pid"; fi
}
case $mode in
load)
  command -v nft >/dev/null || { echo "nftables is not installed (apt-get install nftables)" >&2; exit 3; }
  mkdir -p "$dir" && chmod 0700 "$dir"
  cat > "$dir/new.nft"
  if ! out=$(nft -c -f "$dir/new.nft" 2>&1); then printf 'nft refused the rule set: %s\n' "$out" >&2; exit 4; fi
  { echo 'table inet infra'; echo 'delete table inet infra'; nft list table inet infra 2>/dev/null || true; } > "$dir/previous.nft"
  # Armed before anything changes, on the server itself: it needs nothing from infra to fire.
  disarm
  if [ "$systemd" = 1 ]; then
    systemd-run --quiet --unit=infra-firewall-rollback --on-active="${seconds}s" --timer-property=AccuracySec=1s \
      -- nft -f "$dir/previous.nft"
  else
    setsid sh -c 'sleep "$1" && nft -f "$2"' infra-firewall-rollback "$seconds" "$dir/previous.nft" \
      </dev/null >/dev/null 2>&1 &
    echo $! > "$dir/rollback.pid"
  fi
  nft -f "$dir/new.nft"
  ;;
confirm)
  # Too late if the rollback has fired already: the rules it restored stay.
  armed=0
  if [ "$systemd" = 1 ]; then systemctl is-active --quiet infra-firewall-rollback.timer && armed=1
  elif [ -f "$dir/rollback.pid" ] && kill -0 "$(cat "$dir/rollback.pid")" 2>/dev/null; then armed=1
  fi
  [ "$armed" = 1 ] || { echo "the server had already restored the previous rules" >&2; exit 5; }
  disarm
  mkdir -p /etc/infra
  install -m 0600 "$dir/new.nft" "$persisted"
  if [ ! -f "$conf" ]; then printf '#!/usr/sbin/nft -f\n%s\n' "$include" > "$conf"
  elif ! grep -qxF -- "$include" "$conf"; then printf '%s\n' "$include" >> "$conf"
  fi
  if [ "$systemd" = 1 ]; then systemctl enable --quiet nftables.service 2>/dev/null || true; fi
  nft list table inet infra
  ;;
remove)
  disarm
  nft delete table inet infra 2>/dev/null || true
  rm -f "$persisted"
  if [ -f "$conf" ] && grep -qxF -- "$include" "$conf"; then
    grep -vxF -- "$include" "$conf" > "$conf.infra-tmp" || true
    cat "$conf.infra-tmp" > "$conf" && rm -f "$conf.infra-tmp"
  fi
  ;;
esac
"#;

/// Loads the rules with a rollback armed, proves a fresh login still works,
/// then confirms. When the login fails, waits for the server's own rollback
/// and says so.
pub async fn write(
    pool: &Pool,
    connection: &Connection,
    target: &Target,
    ctx: &OperationContext,
    planned: &Value,
) -> Result<Value, ProviderError> {
    let firewall = rules::read(planned).map_err(|mut e| e.remove(0))?;
    let ssh_port = connection.login_port().await?;
    let origin = ctx.address.to_string().replace(['"', '\\'], "'");
    let ruleset = nft::render(&firewall, &origin, ssh_port);
    let seconds = planned.get("rollback_seconds").and_then(Value::as_number).unwrap_or(30.0) as u64;
    let seconds_text = seconds.to_string();
    let armed = tokio::time::Instant::now();
    connection
        .run_ok(&format!("loading the rules of {origin}"), SCRIPT, &["load", &seconds_text], ruleset.as_bytes())
        .await?;
    // Within half the rollback time, so a login that only works once the
    // rollback has fired cannot pass for one the new rules allow.
    let window = Duration::from_secs((seconds / 2).max(5));
    let refused = match tokio::time::timeout(window, pool.probe(target)).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.message),
        Err(_) => Some(format!("no login within {} s", window.as_secs())),
    };
    if let Some(refused) = refused {
        return Err(locked_out(pool, target, armed, seconds, &refused).await);
    }
    let listing = connection.run_ok(&format!("confirming the rules of {origin}"), SCRIPT, &["confirm"], &[]).await?;
    let listing = lines(&String::from_utf8_lossy(&listing.stdout));
    let mut value = plan(None, planned.clone());
    value.set("ssh_port", Value::Number(f64::from(ssh_port)));
    value.set("loaded", listing.clone());
    value.set("live", listing);
    Ok(value)
}

/// The error after a fresh login failed under the new rules: the server
/// restores the old ones by itself; infra waits for that and checks it.
async fn locked_out(
    pool: &Pool,
    target: &Target,
    armed: tokio::time::Instant,
    seconds: u64,
    refused: &str,
) -> ProviderError {
    tokio::time::sleep_until(armed + Duration::from_secs(seconds + 2)).await;
    let back = pool.probe(target).await.is_ok();
    let after = if back {
        format!("the server restored its previous rules by itself after {seconds} s and infra can log in again")
    } else {
        format!("the server was to restore its previous rules after {seconds} s, but infra still cannot log in")
    };
    ProviderError::failed(format!(
        "the new rules cut off SSH: a fresh login to {} failed ({}); {after}. Nothing was kept: allow \
         the SSH port in a rule or leave keep_ssh = true",
        target.name(),
        refused
    ))
}

pub async fn remove(connection: &Connection) -> Result<(), ProviderError> {
    connection.run_ok("removing the firewall", SCRIPT, &["remove"], &[]).await.map(|_| ())
}

#[cfg(test)]
mod tests;
