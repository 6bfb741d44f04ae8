#!/usr/bin/env bash
# Fleet basics on N systemd test servers (containers of scripts/server-image with
# systemd as PID 1, SSH on 127.0.0.1), infra against pyinfra 3 running the same
# operations on each server: a user, a directory owned by it, four files, a
# package check (already installed: no transaction) and a service (cron, which
# the image already enables and runs).
#
#   benches/fleet-vs-pyinfra.sh          (needs Docker; N=20 ROUNDS=3 by default)
#   INFRA=path/to/infra benches/fleet-vs-pyinfra.sh
#
# Each round starts N fresh servers for each tool, so every first apply meets
# servers that have never been configured, then times the first apply and a
# no-op re-apply (refresh included) with the wall clock. The tools alternate
# (infra first in odd rounds, pyinfra first in even ones). It prints every run,
# then the median and range of each figure and of the infra / pyinfra ratio,
# taken round by round. infra's no-op reuses the logins its first apply left to
# keepers (its default, like Ansible's ControlPersist); each round also times a
# second no-op that logs in afresh (INFRA_SSH_PERSIST=0), and the floor under any
# agentless run that logs in: N OpenSSH logins at once, on fresh servers, running `true`;
# and the floor with logins kept: `true` on N OpenSSH ControlMaster connections at once. pyinfra is installed from PyPI into a virtualenv under
# ~/.cache/infra. Everything it starts is removed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
n=${N:-20}
rounds=${ROUNDS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/infra/target}
# INFRA=PATH times a binary built before; otherwise this builds the release one.
infra=${INFRA:-}
if [ -z "$infra" ]; then
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
  infra="$CARGO_TARGET_DIR/release/infra"
fi
venv=$HOME/.cache/infra/pyinfra-venv
[ -x "$venv/bin/pyinfra" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet 'pyinfra>=3,<4'; }
pyinfra="$venv/bin/pyinfra"
image=$(bash "$repo/scripts/server-image")
work=$(mktemp -d /tmp/infra-fleet-vs-pyinfra.XXXXXX)
label="infra-bench=fleet-vs-pyinfra-$$"
cleanup() { docker ps -aq --filter "label=$label" | xargs -r docker rm -f >/dev/null; rm -rf "$work"; }
trap cleanup EXIT
ssh-keygen -q -t ed25519 -N '' -C infra-bench -f "$work/key"
echo "$("$infra" --version); $("$pyinfra" --version | tr -d '\n'); $n servers, $rounds rounds" >&2

# start_servers, stop_servers and infra_config: the workload.
source "$repo/benches/fleet-workload.sh"

# Both tools must have done the whole job: look at one server.
check_done() { # TOOL
  local id
  id=$(docker ps -q --filter "label=$label" | head -1)
  docker exec "$id" sh -c 'id app >/dev/null && [ "$(stat -c %U:%a /srv/app)" = app:755 ] &&
    [ "$(cat /srv/app/d.conf)" = "setting = d" ] && [ "$(stat -c %a /srv/app/d.conf)" = 640 ] &&
    systemctl is-enabled --quiet cron && systemctl is-active --quiet cron' ||
    { echo "fleet-vs-pyinfra: $1 left a server unconfigured" >&2; exit 1; }
}

pyinfra_config() { # LIST DIR
  local i=0 port hostkey
  mkdir -p "$2"
  : > "$2/known_hosts"
  echo "hosts = [" > "$2/inventory.py"
  while read -r port hostkey; do
    i=$((i + 1))
    echo "[127.0.0.1]:$port $hostkey" >> "$2/known_hosts"
    cat >> "$2/inventory.py" <<PY
    ("s$i", {"ssh_hostname": "127.0.0.1", "ssh_port": $port, "ssh_user": "root", "ssh_key": "$work/key",
            "ssh_known_hosts_file": "$2/known_hosts", "ssh_strict_host_key_checking": "yes"}),
PY
  done < "$1"
  echo "]" >> "$2/inventory.py"
  cat > "$2/deploy.py" <<'PY'
from io import StringIO

from pyinfra.operations import apt, files, server, systemd

server.user(name="user app", user="app")
files.directory(name="directory /srv/app", path="/srv/app", user="app", mode="755")
for key in ["a", "b", "c", "d"]:
    files.put(name=f"file {key}.conf", src=StringIO(f"setting = {key}\n"), dest=f"/srv/app/{key}.conf", mode="640")
apt.packages(name="packages", packages=["sudo", "openssh-server"])
systemd.service(name="service cron", service="cron", running=True, enabled=True)
PY
}

# Prints the wall time of a command in seconds; its output goes to a log that is
# shown if it fails.
timed() {
  local start end
  start=$(date +%s.%N)
  "$@" > "$work/run.log" 2>&1 || { cat "$work/run.log" >&2; echo "fleet-vs-pyinfra: failed: $*" >&2; exit 1; }
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.3f}')"
}

# The floor of any agentless run: one OpenSSH login per server, all at once,
# running `true`. infra and pyinfra both pay it on every run.
run_logins() { # ROUND
  local floor
  start_servers "$work/servers"
  floor=$(timed bash -c 'pids=(); while read -r port hostkey; do
      ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
        -i "$1" -p "$port" root@127.0.0.1 true & pids+=($!)
    done < "$2"; for pid in "${pids[@]}"; do wait "$pid"; done' logins "$work/key" "$work/servers")
  # The floor with logins kept, as infra keeps them: OpenSSH's ControlMaster
  # connections made first, then one command (`true`) on each at once.
  bash -c 'while read -r port hostkey; do
      ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
        -o ControlMaster=yes -o ControlPersist=60 -o "ControlPath=$3/ctl-$port" -i "$1" -p "$port" -fN root@127.0.0.1
    done < "$2"' masters "$work/key" "$work/servers" "$work"
  kept=$(timed bash -c 'pids=(); while read -r port hostkey; do
      ssh -o "ControlPath=$3/ctl-$port" -p "$port" root@127.0.0.1 true & pids+=($!)
    done < "$2"; for pid in "${pids[@]}"; do wait "$pid"; done' kept "$work/key" "$work/servers" "$work")
  while read -r port hostkey; do ssh -o "ControlPath=$work/ctl-$port" -p "$port" -O exit root@127.0.0.1 2>/dev/null || true; done < "$work/servers"
  stop_servers
  echo "logins $1 $floor $floor" | tee -a "$work/results" >&2
  echo "kept-logins $1 $kept $kept" | tee -a "$work/results" >&2
}

apply_infra() { "$infra" apply -auto-approve -no-color; }
apply_pyinfra() { "$pyinfra" -y inventory.py deploy.py; }

# One tool's turn: fresh servers, its configuration, the first apply, a no-op.
run_tool() { # TOOL ROUND
  local tool=$1 dir="$work/$1-$2" first noop
  start_servers "$work/servers"
  "${tool}_config" "$work/servers" "$dir"
  first=$(cd "$dir" && timed "apply_$tool")
  check_done "$tool"
  noop=$(cd "$dir" && timed "apply_$tool")
  if [ "$tool" = infra ] && ! grep -q 'No changes' "$work/run.log"; then
    cat "$work/run.log" >&2; echo "fleet-vs-pyinfra: infra's re-apply changed something" >&2; exit 1
  fi
  if [ "$tool" = infra ]; then
    unkept=$(cd "$dir" && INFRA_SSH_PERSIST=0 timed apply_infra)
    echo "infra-unkept $2 $unkept $unkept" | tee -a "$work/results" >&2
  fi
  stop_servers
  echo "$tool $2 $first $noop" | tee -a "$work/results" >&2
}

: > "$work/results"
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) = 1 ]; then order="infra pyinfra"; else order="pyinfra infra"; fi
  for tool in $order; do run_tool "$tool" "$round"; done
  run_logins "$round"
done

python3 - "$work/results" "$n" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
n = sys.argv[2]
runs = {}
for tool, rnd, first, noop in rows:
    runs.setdefault(tool, {})[rnd] = (float(first), float(noop))
def show(label, values, unit=" s"):
    values = sorted(values)
    print(f"{label:42} {statistics.median(values):7.2f}{unit} ({values[0]:.2f}-{values[-1]:.2f})")
for i, what in enumerate(["first apply", "no-op apply"]):
    for tool in ["infra", "pyinfra"]:
        show(f"{tool}, {n} servers, {what}", [v[i] for v in runs[tool].values()])
    ratios = [runs["infra"][r][i] / runs["pyinfra"][r][i] for r in runs["infra"]]
    show(f"infra / pyinfra, {what}", ratios, "  ")
show(f"infra, {n} servers, no-op, logins not kept", [v[0] for v in runs["infra-unkept"].values()])
show(f"{n} concurrent OpenSSH logins (floor)", [v[0] for v in runs["logins"].values()])
show(f"{n} commands on kept OpenSSH logins (floor)", [v[0] for v in runs["kept-logins"].values()])
PY
