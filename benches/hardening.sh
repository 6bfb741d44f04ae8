#!/usr/bin/env bash
# The hardened-server module, before and after, on one test server: Lynis's
# hardening index and ssh-audit's failures and warnings on the untouched server,
# then after `modules/hardened-server` is applied (without its firewall, then
# with it). Every figure in BENCHMARKS.md's hardening section is a line this prints.
#
#   benches/hardening.sh
#
# The server is a container with systemd as PID 1 (scripts/server-image), SSH
# published on 127.0.0.1; Lynis comes from Debian (installed on the server),
# ssh-audit from PyPI (pip install ssh-audit). Lynis's index moves with the
# moment (it weighs pending updates, among others): run it more than once to see
# the spread. The server is removed at the end.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/infra/target}
cargo build --manifest-path "$repo/Cargo.toml" --quiet
infra="$CARGO_TARGET_DIR/debug/infra"
command -v ssh-audit >/dev/null || { echo "ssh-audit is needed: python3 -m pip install ssh-audit" >&2; exit 1; }
work=$(mktemp -d /tmp/infra-hardening-bench.XXXXXX)
source "$repo/benches/systemd-server.sh" hardening
on_server() { docker exec "$id" sh -c "$1"; }
on_server 'mount -o remount,rw /proc/sys; apt-get update -q >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends lynis >/dev/null 2>&1'

lynis_index() {
  on_server 'lynis audit system --quick --no-colors >/dev/null 2>&1; grep "^hardening_index=" /var/log/lynis-report.dat | cut -d= -f2'
}
# "N failures (algorithms), M warnings": ssh-audit's JSON, kex, host keys, ciphers and MACs.
ssh_audit() {
  ssh-audit -j -p "$port" 127.0.0.1 | python3 -c '
import json, sys
report = json.load(sys.stdin)
algorithms = [a for s in ("kex", "key", "enc", "mac") for a in report.get(s, [])]
fails = [a["algorithm"] for a in algorithms if a.get("notes", {}).get("fail")]
warns = [a["algorithm"] for a in algorithms if a.get("notes", {}).get("warn")]
named = lambda names: ", ".join(names) or "none"
print("%d failures (%s), %d warnings (%s)" % (len(fails), named(fails), len(warns), named(warns)))'
}

echo "untouched server: Lynis hardening index $(lynis_index)"
echo "untouched server: ssh-audit $(ssh_audit)"

cat > "$work/main.infra" <<EOF
server "box" {
  host           = "127.0.0.1"
  port           = $port
  user           = "admin"
  bootstrap_user = "root"
  sudo           = true
  private_key    = "$work/id_ed25519"
  host_key       = "$(on_server 'cut -d" " -f1,2 /etc/ssh/ssh_host_ed25519_key.pub')"
}

module "hardening" {
  source      = "$repo/modules/hardened-server"
  server      = server.box
  admin_keys  = [file("$work/id_ed25519.pub")]
  host_kernel = false # a container: kernel-wide settings belong to the host
  firewall    = false
}
EOF
"$infra" -chdir "$work" apply -auto-approve >/dev/null
echo "after the module, without its firewall: Lynis hardening index $(lynis_index)"
echo "after the module: ssh-audit $(ssh_audit)"
sed -i 's/firewall    = false/firewall    = true/' "$work/main.infra"
"$infra" -chdir "$work" apply -auto-approve >/dev/null
echo "after the module, with its firewall: Lynis hardening index $(lynis_index)"
