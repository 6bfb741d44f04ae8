//! The scripts behind `backup`: the runner installed on the server (what a
//! timer runs, and what `infra backup ...` runs over SSH, so both do the same),
//! and the fixed scripts infra runs to prepare, schedule and remove a backup.
//! Every failure the runner reports starts with `backup NAME:` so the error
//! infra shows names the backup.

use serde_json::Value as Json;

pub const PATH: &str = "/usr/local/sbin/infra-backup";

pub const SCRIPT: &str = r#"#!/bin/bash
# Managed by infra: runs the restic backups infra configured in /etc/infra/backup.
#   infra-backup init|run|verify|list|status NAME
#   infra-backup restore NAME SNAPSHOT TARGET
set -uo pipefail
mode=${1:?mode} name=${2:?name}
dir=/etc/infra/backup/$name
code=1
fail() { printf 'backup %s: %s\n' "$name" "$*" >&2; exit "$code"; }
[ -f "$dir/repository" ] || fail "not configured on this server"
command -v restic >/dev/null || fail "restic is not installed"
if [ -f "$dir/environment" ]; then
  while IFS= read -r -d '' kv; do export "${kv?}"; done < "$dir/environment"
fi
RESTIC_REPOSITORY=$(< "$dir/repository")
export RESTIC_REPOSITORY RESTIC_PASSWORD_FILE=$dir/password RESTIC_CACHE_DIR=/var/cache/infra-backup/$name
last() { printf '%s' "$1" | grep -v '^[[:space:]]*$' | tail -n 3 | tr '\n' ' '; }
hook() {
  [ -s "$dir/$1" ] || return 0
  local argv rc
  mapfile -d '' -t argv < "$dir/$1"
  "${argv[@]}"; rc=$?
  [ "$rc" -eq 0 ] || { printf 'backup %s: the %s hook failed (exit %s)\n' "$name" "$1" "$rc" >&2; return 1; }
}
unit_state() { systemctl show "$1" -p Result -p ExecMainExitTimestamp -p ExecMainStatus 2>/dev/null | tr '\n' ' '; }
if [ "$mode" != status ]; then
  exec 9>"$dir/lock"
  flock -w 3600 9 || fail "another run of this backup holds its lock"
fi
case $mode in
init)
  # A new password arrives as password.new: it replaces the old one only once
  # the repository takes it (a new key, when the old password still opens it).
  new=$dir/password.new
  [ -f "$new" ] || new=$dir/password
  if out=$(RESTIC_PASSWORD_FILE=$new restic cat config 2>&1 >/dev/null); then
    [ "$new" = "$dir/password" ] || mv -f -- "$new" "$dir/password"
    exit 0
  fi
  case $out in
    *"wrong password"*)
      if [ "$new" != "$dir/password" ] && [ -f "$dir/password" ] && restic cat config >/dev/null 2>&1; then
        out=$(restic key passwd --new-password-file "$new" 2>&1) || fail "cannot change the repository password: $(last "$out")"
        mv -f -- "$new" "$dir/password"
        echo "backup $name: the repository password was changed"
        exit 0
      fi
      rm -f -- "$dir/password.new"
      fail "the repository $RESTIC_REPOSITORY refused the password (wrong password or no key found)" ;;
    *"Is there a repository at the following location?"*|*"unable to open config file"*)
      out=$(RESTIC_PASSWORD_FILE=$new restic init 2>&1) || fail "cannot initialise the repository $RESTIC_REPOSITORY: $(last "$out")"
      [ "$new" = "$dir/password" ] || mv -f -- "$new" "$dir/password" ;;
    *) fail "the repository $RESTIC_REPOSITORY cannot be reached: $(last "$out")" ;;
  esac
  ;;
run)
  mapfile -d '' -t paths < "$dir/paths"
  for p in "${paths[@]}"; do [ -e "$p" ] || fail "the source $p does not exist"; done
  hook before || exit 1
  limit=()
  if [ -s "$dir/limit_upload" ]; then limit=(--limit-upload "$(< "$dir/limit_upload")"); fi
  restic backup --tag infra --exclude-file "$dir/exclude" "${limit[@]}" -- "${paths[@]}" 2>"$dir/last.err"
  status=$?
  cat "$dir/last.err" >&2
  hook after || true
  case $status in
    0) ;;
    3) code=3; fail "some source files could not be read: $(last "$(cat "$dir/last.err")")" ;;
    *) code=$status; fail "restic backup failed (exit $status): $(last "$(cat "$dir/last.err")")" ;;
  esac
  mapfile -t keep < "$dir/keep"
  if [ ${#keep[@]} -gt 0 ]; then
    out=$(restic forget --tag infra --prune "${keep[@]}" 2>&1) || fail "restic forget failed: $(last "$out")"
    printf '%s\n' "$out" | grep -E '^(keep|remove) [0-9]+ snapshots' || true
  fi
  ;;
list)
  restic snapshots --json --tag infra 2>"$dir/last.err" || fail "cannot list snapshots: $(last "$(cat "$dir/last.err")")"
  echo
  for id in $(restic snapshots --json --tag infra | grep -o '"short_id":"[0-9a-f]*"' | cut -d'"' -f4); do
    printf '%s\t' "$id"
    restic stats --json --mode restore-size "$id" 2>/dev/null || echo '{}'
  done
  ;;
restore)
  snapshot=${3:-latest} target=${4:?target}
  mkdir -p -- "$target"
  filter=(); [ "$snapshot" = latest ] && filter=(--tag infra)
  out=$(restic restore "$snapshot" "${filter[@]}" --target "$target" 2>&1) || fail "restore failed: $(last "$out")"
  printf '%s\n' "$out" | tail -n 1
  ;;
verify)
  out=$(restic check --read-data 2>&1) || { code=3; fail "restic check found the repository damaged: $(last "$out")"; }
  scratch=$(mktemp -d /var/tmp/infra-verify.XXXXXX)
  trap 'rm -rf -- "$scratch"' EXIT
  out=$(restic restore latest --tag infra --target "$scratch" 2>&1) || { code=3; fail "the latest snapshot does not restore: $(last "$out")"; }
  mapfile -d '' -t paths < "$dir/paths"
  files=0 differ=0
  for p in "${paths[@]}"; do
    files=$((files + $(find "$scratch$p" -type f 2>/dev/null | wc -l)))
    differ=$((differ + $(diff -rq --no-dereference -- "$p" "$scratch$p" 2>&1 | wc -l)))
  done
  echo "restic check --read-data: no errors; the latest snapshot restored $files files, $differ differ from the source"
  [ "$differ" -eq 0 ] || { code=4; fail "$differ differences between the latest snapshot and the source (files changed since the snapshot count too)"; }
  ;;
status)
  failed=0
  for unit in "infra-backup-$name" "infra-backup-verify-$name"; do
    [ -f "/etc/systemd/system/$unit.timer" ] || continue
    state=$(unit_state "$unit.service")
    next=$(systemctl show "$unit.timer" -p NextElapseUSecRealtime --value 2>/dev/null)
    printf '%s: %s next: %s\n' "$unit" "$state" "${next:-unknown}"
    case $state in
      *"ExecMainExitTimestamp= "*) ;;
      *"Result=success"*) ;;
      *) failed=1 ;;
    esac
  done
  [ "$failed" -eq 0 ] || fail "the last scheduled run failed (journalctl -u infra-backup-$name)"
  ;;
*) fail "unknown mode $mode" ;;
esac
"#;

/// Runs the installed runner with quoted arguments.
pub const INVOKE: &str = r#"exec "$@""#;

pub const PREPARE: &str = r#"
set -eu
name=$1
mkdir -p -- "/etc/infra/backup/$name" /var/cache/infra-backup
chmod 0700 /etc/infra/backup "/etc/infra/backup/$name"
"#;

/// `NAME TIMER...`: turns on the listed timers of the backup and removes the
/// units of any it no longer has.
pub const SCHEDULE: &str = r#"
set -eu
name=$1; shift
if [ $# -gt 0 ] && [ ! -d /run/systemd/system ]; then
  echo "backup $name: systemd is not running on this server, and a schedule needs it (schedule = \"\" runs only when asked)" >&2
  exit 1
fi
for unit in "infra-backup-$name" "infra-backup-verify-$name"; do
  keep=0
  for t in "$@"; do [ "$t" = "$unit.timer" ] && keep=1; done
  if [ "$keep" = 0 ] && [ -f "/etc/systemd/system/$unit.timer" ]; then
    systemctl disable --now --quiet -- "$unit.timer" 2>/dev/null || true
    rm -f -- "/etc/systemd/system/$unit.timer" "/etc/systemd/system/$unit.service"
  fi
done
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  for t in "$@"; do systemctl enable --now --quiet -- "$t"; done
fi
"#;

/// Removes the schedule and the settings; the repository and its data stay.
pub const REMOVE: &str = r#"
set -eu
name=$1
for unit in "infra-backup-$name" "infra-backup-verify-$name"; do
  systemctl disable --now --quiet -- "$unit.timer" 2>/dev/null || true
  rm -f -- "/etc/systemd/system/$unit.timer" "/etc/systemd/system/$unit.service"
done
[ -d /run/systemd/system ] && systemctl daemon-reload
rm -rf -- "/etc/infra/backup/$name" "/var/cache/infra-backup/$name"
if [ -z "$(ls -A /etc/infra/backup 2>/dev/null)" ]; then rm -f /usr/local/sbin/infra-backup; fi
"#;

/// `infra backup list`: the runner's `restic snapshots --json`, then one
/// `ID<TAB>restic stats --json` line per snapshot, as a table.
pub fn snapshot_table(output: &str) -> Option<String> {
    let (snapshots, stats) = output.split_once('\n')?;
    let snapshots: Vec<Json> = serde_json::from_str(snapshots).ok()?;
    let sizes: std::collections::HashMap<&str, u64> = stats
        .lines()
        .filter_map(|l| {
            let (id, json) = l.split_once('\t')?;
            let stats: Json = serde_json::from_str(json).ok()?;
            Some((id, stats.get("total_size")?.as_u64()?))
        })
        .collect();
    let mut table = format!("{:<10}  {:<25}  {:>10}  paths\n", "snapshot", "time", "size");
    for snapshot in &snapshots {
        let id = snapshot.get("short_id").and_then(Json::as_str).unwrap_or_default();
        let time = snapshot.get("time").and_then(Json::as_str).unwrap_or_default();
        let paths: Vec<&str> =
            snapshot.get("paths").and_then(Json::as_array).into_iter().flatten().filter_map(Json::as_str).collect();
        let size = sizes.get(id).map_or("?".to_string(), |b| human_size(*b));
        // restic's RFC 3339 time, to the second, with its offset.
        let offset = time.len().checked_sub(6).and_then(|i| time.get(i..)).unwrap_or_default();
        let time = format!("{} {offset}", time.get(..19).unwrap_or(time).replace('T', " "));
        table.push_str(&format!("{id:<10}  {time:<25}  {size:>10}  {}\n", paths.join(" ")));
    }
    table.push_str(&format!("{} snapshots\n", snapshots.len()));
    Some(table)
}

fn human_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < units.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{size:.1} {}", units[unit]) }
}
