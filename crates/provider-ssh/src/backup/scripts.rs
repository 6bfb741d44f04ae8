//! The fixed scripts infra runs over SSH to prepare, schedule and remove a
//! backup on a server (the runner itself is `infra_restic::runner`).

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
