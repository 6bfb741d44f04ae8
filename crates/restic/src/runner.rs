//! The runner: the script installed where a backup runs (a server, a runner
//! container), what its schedule runs and what `infra backup ...` runs, so
//! both do the same. Every failure it reports starts with `backup NAME:`, so
//! the error infra shows names the backup.

use serde_json::Value as Json;

pub const PATH: &str = "/usr/local/sbin/infra-backup";

pub const SCRIPT: &str = r#"#!/bin/bash
# Managed by infra: runs the restic backups infra configured in /etc/infra/backup.
#   infra-backup init|run|verify|list|status|schedule NAME
#   infra-backup restore NAME SNAPSHOT [TARGET]   (no TARGET: a dump back into its database)
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
# After a password change the old key goes once a backup with the new one has
# succeeded: the new password is then proven, and the old one opens nothing.
retire_old_key() {
  [ -f "$dir/password.old" ] || return 0
  local keys id out
  if keys=$(RESTIC_PASSWORD_FILE=$dir/password.old restic key list --json 2>/dev/null); then
    id=$(printf '%s' "$keys" | grep -o '{[^}]*"current": *true[^}]*}' | grep -o '"id": *"[0-9a-f]*"' | grep -o '[0-9a-f]\{8,\}')
    if [ -n "$id" ]; then
      out=$(restic key remove "$id" 2>&1) || { printf 'backup %s: the old password key stays for now: %s\n' "$name" "$(last "$out")" >&2; return 0; }
      echo "backup $name: the old password's key was removed"
    fi
  fi
  rm -f -- "$dir/password.old"
}
unit_state() { systemctl show "$1" -p Result -p ExecMainExitTimestamp -p ExecMainStatus 2>/dev/null | tr '\n' ' '; }
if [ "$mode" != status ] && [ "$mode" != schedule ]; then
  exec 9>"$dir/lock"
  flock -w 3600 9 || fail "another run of this backup holds its lock"
fi
case $mode in
init)
  # A new password arrives as password.new: it replaces the old one only once
  # the repository takes it (a key added beside the old one, which keeps
  # opening the repository until a backup with the new one has succeeded).
  new=$dir/password.new
  [ -f "$new" ] || new=$dir/password
  if out=$(RESTIC_PASSWORD_FILE=$new restic cat config 2>&1 >/dev/null); then
    [ "$new" = "$dir/password" ] || mv -f -- "$new" "$dir/password"
    exit 0
  fi
  case $out in
    *"wrong password"*)
      if [ "$new" != "$dir/password" ] && [ -f "$dir/password" ] && restic cat config >/dev/null 2>&1; then
        out=$(restic key add --new-password-file "$new" 2>&1) || fail "cannot add the new password as a key: $(last "$out")"
        mv -f -- "$dir/password" "$dir/password.old"
        mv -f -- "$new" "$dir/password"
        echo "backup $name: the new password was added as a repository key; the old one is removed after the first backup with the new one"
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
  mapfile -d '' -t dump < "$dir/dump"
  if [ ${#dump[@]} -gt 0 ]; then
    # A dump (pg_dump) streamed into restic: nothing of it lands on disk.
    hook before || exit 1
    "${dump[@]}" 2>"$dir/dump.err" | restic backup --tag infra --stdin --stdin-filename "$(< "$dir/dump_name")" >"$dir/last.out" 2>"$dir/last.err"
    statuses=("${PIPESTATUS[@]}")
    cat "$dir/last.out"; cat "$dir/last.err" >&2
    hook after || true
    if [ "${statuses[0]}" -ne 0 ]; then
      # restic kept what the dump wrote before it failed: that is no backup.
      sid=$(grep -o 'snapshot [0-9a-f]* saved' "$dir/last.out" | cut -d' ' -f2)
      [ -z "$sid" ] || restic forget "$sid" >/dev/null 2>&1
      code=${statuses[0]}; fail "the dump (${dump[0]}) failed (exit ${statuses[0]}): $(last "$(cat "$dir/dump.err")")"
    fi
    [ "${statuses[1]}" -eq 0 ] || { code=${statuses[1]}; fail "restic backup failed (exit ${statuses[1]}): $(last "$(cat "$dir/last.err")")"; }
    status=0
  else
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
  fi
  retire_old_key
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
  snapshot=${3:-latest} target=${4:-}
  filter=(); [ "$snapshot" = latest ] && filter=(--tag infra)
  mapfile -d '' -t load < "$dir/load"
  if [ -z "$target" ]; then
    # Back where it came from: the dump piped into its loader (psql).
    [ ${#load[@]} -gt 0 ] || fail "give --to PATH: where the restored files go"
    restic dump "${filter[@]}" "$snapshot" "/$(< "$dir/dump_name")" 2>"$dir/last.err" | "${load[@]}" >"$dir/load.out" 2>&1
    statuses=("${PIPESTATUS[@]}")
    [ "${statuses[0]}" -eq 0 ] || fail "restic dump failed: $(last "$(cat "$dir/last.err")")"
    [ "${statuses[1]}" -eq 0 ] || fail "loading the dump failed: $(last "$(cat "$dir/load.out")")"
    echo "restored $(< "$dir/dump_name") from snapshot $snapshot"
  else
    mkdir -p -- "$target"
    out=$(restic restore "$snapshot" "${filter[@]}" --target "$target" 2>&1) || fail "restore failed: $(last "$out")"
    printf '%s\n' "$out" | tail -n 1
  fi
  ;;
verify)
  out=$(restic check --read-data 2>&1) || { code=3; fail "restic check found the repository damaged: $(last "$out")"; }
  mapfile -d '' -t dump < "$dir/dump"
  if [ ${#dump[@]} -gt 0 ] && [ "${dump[0]}" = pg_dump ]; then
    # Into a scratch database, then every table compared: rows and a checksum.
    scratch=infra_verify_$$
    q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
    q -c "CREATE DATABASE $scratch" 2>"$dir/load.out" || fail "cannot make a scratch database (the user needs CREATEDB): $(last "$(cat "$dir/load.out")")"
    trap 'psql -X -q -c "DROP DATABASE IF EXISTS $scratch" >/dev/null 2>&1' EXIT
    restic dump --tag infra latest "/$(< "$dir/dump_name")" 2>"$dir/last.err" | q -d "$scratch" >/dev/null 2>"$dir/load.out" \
      || { code=3; fail "the latest dump does not load: $(last "$(cat "$dir/load.out" "$dir/last.err")")"; }
    tables=$(q -c "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")
    count=0 rows=0 differ=0
    for t in $tables; do
      sql="SELECT count(*) || ' ' || coalesce(md5(string_agg(r::text, ',' ORDER BY r::text)), '') FROM $t r"
      a=$(q -c "$sql") b=$(q -d "$scratch" -c "$sql" 2>/dev/null)
      count=$((count + 1)) rows=$((rows + ${a%% *}))
      [ "$a" = "$b" ] || { differ=$((differ + 1)); echo "table $t: source $a, restored ${b:-missing}" >&2; }
    done
    echo "restic check --read-data: no errors; the latest dump restored into a scratch database: $count tables, $rows rows, $differ differ from the source"
    [ "$differ" -eq 0 ] || { code=4; fail "$differ tables differ between the latest dump and the database (changes since the snapshot count too)"; }
    exit 0
  fi
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
schedule)
  # In a runner container (no systemd): runs and verifies by the calendar
  # expressions of the settings, worked out by systemd-analyze.
  command -v systemd-analyze >/dev/null || fail "systemd-analyze is needed for a schedule (Debian's systemd package)"
  next() {
    local t
    [ -s "$dir/$1" ] || return 1
    t=$(systemd-analyze calendar --iterations=1 "$(< "$dir/$1")" 2>/dev/null | sed -n 's/^ *Next elapse: //p')
    [ -n "$t" ] && date -d "$t" +%s
  }
  while true; do
    run_at=$(next schedule || echo 0) verify_at=$(next verify_schedule || echo 0)
    if [ "$run_at" = 0 ] && [ "$verify_at" = 0 ]; then sleep infinity; fi
    at=$run_at what=run
    if [ "$verify_at" != 0 ] && { [ "$run_at" = 0 ] || [ "$verify_at" -lt "$run_at" ]; }; then at=$verify_at what=verify; fi
    wait=$((at - $(date +%s)))
    [ "$wait" -le 0 ] || sleep "$wait"
    echo "$(date -u '+%F %T') $what"
    if "$0" "$what" "$name"; then result=ok; else result=failed; fi
    echo "$(date -u '+%F %T') $what: $result" | tee -a "$dir/runs"
    tail -n 20 "$dir/runs" > "$dir/runs.tmp" && mv -f "$dir/runs.tmp" "$dir/runs"
    sleep 1
  done
  ;;
status)
  if [ ! -d /run/systemd/system ]; then
    # A runner container: its schedule loop keeps the last runs.
    [ -s "$dir/runs" ] || { echo "no scheduled run yet"; exit 0; }
    cat "$dir/runs"
    for what in run verify; do
      if grep " $what: " "$dir/runs" | tail -n 1 | grep -q ': failed$'; then fail "the last scheduled $what failed (docker logs of its runner)"; fi
    done
    exit 0
  fi
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

#[cfg(test)]
mod tests {
    use super::snapshot_table;

    #[test]
    fn snapshots_list_with_time_and_size() {
        let output = concat!(
            r#"[{"time":"2026-12-01T03:00:01.123+00:00","paths":["/srv"],"short_id":"ab12cd34"}]"#,
            "\nab12cd34\t{\"total_size\":1572864,\"total_file_count\":3}\n"
        );
        let table = snapshot_table(output).expect("parses");
        assert!(table.contains("ab12cd34    2026-12-01 03:00:01 +00:00     1.5 MiB  /srv"), "{table}");
        assert!(table.ends_with("1 snapshots\n"));
    }
}
