#!/usr/bin/env bash
# The `firewall` resource on one test server: how long its steps take. Every
# figure in BENCHMARKS.md's firewall paragraph is a line this prints.
#
#   benches/firewall.sh            (RUNS=5 by default; needs Docker)
#
# The server is a container with systemd as PID 1 (scripts/server-image), SSH
# published on 127.0.0.1. Each step is timed by benches/timing.py (median and
# range of RUNS runs after one warm-up run), with what brings the server to the
# step's starting point done untimed before every run:
#   create       no firewall -> one rule (nft -c, load with the rollback armed,
#                a fresh SSH login, confirm and persist)
#   rule added   one rule -> two rules
#   rule removed two rules -> one rule
#   no-op plan   `infra plan` with the firewall in place (refresh reads the table)
# Debug build, as the e2e tests run it. The server is removed at the end.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/infra/target}
cargo build --manifest-path "$repo/Cargo.toml" --quiet
infra="$CARGO_TARGET_DIR/debug/infra"
runs=${RUNS:-5}
work=$(mktemp -d /tmp/infra-firewall-bench.XXXXXX)
source "$repo/benches/systemd-server.sh" firewall
host_key=$(docker exec "$id" cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)

# config RULES...: the server and a firewall opening each port given.
config() {
  cat <<EOF
server "box" {
  host        = "127.0.0.1"
  port        = $port
  user        = "root"
  private_key = "$key"
  host_key    = "$host_key"
}

firewall "box" {
  server           = server.box
  rollback_seconds = 20
EOF
  for rule in "$@"; do printf '  rule "p%s" {\n    port = %s\n  }\n' "$rule" "$rule"; done
  echo "}"
}
config 8080 > "$work/one.infra"
config 8080 8081 > "$work/two.infra"
mkdir "$work/run"
in_run="$infra -chdir $work/run"
use() { echo "cp $work/$1.infra $work/run/main.infra"; }
apply="$in_run apply -auto-approve"
timing() { python3 "$repo/benches/timing.py" --runs "$runs" --warmup 1 "$@"; }

timing --label "create (no firewall -> one rule)" \
  --prepare "$(use one) && $in_run destroy -auto-approve" -- "$apply"
timing --label "rule added (one rule -> two)" \
  --prepare "$(use one) && $apply && $(use two)" -- "$apply"
timing --label "rule removed (two rules -> one)" \
  --prepare "$(use two) && $apply && $(use one)" -- "$apply"
$apply >/dev/null
timing --label "no-op plan (refresh reads the table)" -- "$in_run plan -detailed-exitcode"
