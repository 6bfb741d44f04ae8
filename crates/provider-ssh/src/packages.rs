//! `package`: Debian packages on a server, all the names of one resource in one
//! apt-get run. `present` installs what is missing, `latest` also upgrades to
//! what apt offers, `absent` removes. Destroying the resource leaves the
//! packages as they are (removing software is asked for with `absent`).

use infra_core::{AttributeSchema, ProviderError, Schema, Type, Value};

use crate::facts::{Answer, Facts, Question};
use infra_ssh::Connection;

pub fn schema() -> Schema {
    crate::on_server(Schema::new("Debian packages on a server, installed or removed in one apt-get run."))
        .attribute("names", AttributeSchema::required(Type::list(Type::String)))
        .attribute(
            "state",
            AttributeSchema::optional(Type::String)
                .default(Value::string("present"))
                .describe("present, latest or absent"),
        )
        .attribute("versions", AttributeSchema::computed(Type::map(Type::String)).describe("installed versions"))
        .attribute("id", AttributeSchema::computed(Type::String))
}

pub fn validate(config: &Value) -> Vec<ProviderError> {
    let mut errors = Vec::new();
    if let Some(state) = config.get("state").and_then(Value::as_str)
        && !matches!(state, "present" | "latest" | "absent")
    {
        errors.push(ProviderError::invalid("state", format!("state {state:?} is not present, latest or absent")));
    }
    for name in config.strings("names") {
        let valid = name.len() > 1
            && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'));
        if !valid {
            errors.push(ProviderError::invalid("names", format!("{name:?} is not a Debian package name")));
        }
    }
    errors
}

pub fn plan(mut proposed: Value) -> Value {
    let id = proposed.strings("names").join(",");
    if let Value::Object(map) = &mut proposed {
        map.insert("id".into(), Value::string(id));
    }
    proposed
}

pub fn questions(state: &Value) -> Vec<Question> {
    let latest = state.get("state").and_then(Value::as_str) == Some("latest");
    state
        .strings("names")
        .into_iter()
        .flat_map(|name| {
            let candidate = latest.then(|| Question::Candidate(name.clone()));
            std::iter::once(Question::Package(name)).chain(candidate)
        })
        .collect()
}

/// `names` holds the packages that are as the state asks, so one removed (or
/// left behind an upgrade, for `latest`) by hand shows as a change.
pub fn observed(recorded: &Value, facts: &Facts) -> Value {
    let state = recorded.get("state").and_then(Value::as_str).unwrap_or("present");
    let mut holding = Vec::new();
    let mut versions = Vec::new();
    for name in recorded.strings("names") {
        let installed = match facts.answer(&Question::Package(name.clone())) {
            Answer::Package(version) => Some(version.clone()),
            _ => None,
        };
        let candidate = match facts.answer(&Question::Candidate(name.clone())) {
            Answer::Candidate(version) => Some(version.clone()),
            _ => None,
        };
        let holds = match (state, &installed) {
            ("absent", installed) => installed.is_none(),
            ("latest", Some(version)) => candidate.is_none_or(|c| &c == version),
            (_, installed) => installed.is_some(),
        };
        if holds {
            holding.push(Value::string(&name));
        }
        if let Some(version) = installed {
            versions.push((name, Value::string(version)));
        }
    }
    let mut value = recorded.clone();
    if let Value::Object(map) = &mut value {
        map.insert("names".into(), Value::List(holding));
        map.insert("versions".into(), Value::object(versions));
    }
    value
}

/// One apt-get run for every name; package lists refreshed first for `latest`,
/// and when apt does not know a package yet (lists missing or old).
const APPLY: &str = r#"
set -eu
state=$1; shift
export DEBIAN_FRONTEND=noninteractive
# Several resources may install at once: wait for dpkg's lock instead of failing.
apt_get() { apt-get -q -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"; }
# A run killed half way (infra's or anyone's) leaves dpkg "interrupted": finish
# its work first, as apt asks, then try again.
apt() {
  if out=$(apt_get "$@" 2>&1); then printf '%s\n' "$out"; return 0; fi
  case $out in
    *"dpkg was interrupted"*) dpkg --configure -a >/dev/null && apt_get "$@" ;;
    *) printf '%s\n' "$out" >&2; return 1 ;;
  esac
}
# The lists lock has no timeout option; an update still running (another
# resource's, or one left by an infra that was killed) is waited for, up to 10 min.
update() {
  n=0
  while ! out=$(apt-get -q -o DPkg::Lock::Timeout=600 update 2>&1 >/dev/null); do
    case $out in *"Could not get lock"*) ;; *) printf '%s\n' "$out" >&2; return 1 ;; esac
    n=$((n + 1)); if [ $n -ge 600 ]; then printf '%s\n' "$out" >&2; return 1; fi
    sleep 1
  done
}
installed() { [ "$(dpkg-query -W -f='${Status}\n' -- "$@" 2>/dev/null | grep -c ' ok installed$')" -eq $# ]; }
if [ "$state" = present ] && installed "$@"; then exit 0; fi
case $state in
  absent) apt remove -- "$@" ;;
  latest) update; apt install --no-install-recommends -- "$@" ;;
  *)
    if ! out=$(apt install --no-install-recommends -- "$@" 2>&1); then
      if printf '%s' "$out" | grep -qE 'Unable to locate package|has no installation candidate'; then
        update
        apt install --no-install-recommends -- "$@"
      else
        printf '%s\n' "$out" >&2; exit 1
      fi
    fi ;;
esac
"#;

/// Installs what is missing of `names` (a resource's own software: restic for
/// a backup), the same way a `package` resource does.
pub async fn ensure_installed(connection: &Connection, names: &[&str]) -> Result<(), ProviderError> {
    let args: Vec<&str> = std::iter::once("present").chain(names.iter().copied()).collect();
    connection.run_ok(&format!("installing {}", names.join(" ")), APPLY, &args, &[]).await.map(|_| ())
}

pub async fn write(connection: &Connection, planned: &Value) -> Result<Value, ProviderError> {
    let (bare, _) = planned.unmark();
    let names = bare.strings("names");
    let state = bare.get("state").and_then(Value::as_str).unwrap_or("present");
    let mut args: Vec<&str> = vec![state];
    args.extend(names.iter().map(String::as_str));
    let what = format!("apt-get ({state}) {}", names.join(" "));
    connection.run_ok(&what, APPLY, &args, &[]).await?;
    let planned = plan(planned.clone());
    let facts = crate::facts::gather(connection, &questions(&planned)).await?;
    Ok(observed(&planned, &facts))
}
