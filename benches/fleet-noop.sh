#!/usr/bin/env bash
# Where a fleet's no-op apply spends its time: N converged systemd test servers
# (the fleet-basics workload of benches/fleet-vs-pyinfra.sh, SSH on 127.0.0.1),
# infra's no-op apply timed RUNS times against a second command, alternated, by
# benches/timing.py --cpu: the wall time of each run and the CPU time the whole
# machine spent in it (the servers run on the same cores), median and range;
# then, if perf is installed, a profile of one no-op `plan` of each, by process
# (`perf record -a`, the share of samples of each command name).
#
#   benches/fleet-noop.sh                 this build, logins kept, against
#                                         the same with INFRA_SSH_PERSIST=0
#   VS=path/to/other/infra benches/fleet-noop.sh
#                                         this build against another binary
#   N=20 RUNS=5 by default; INFRA=path/to/infra times a binary built before.
#
# Everything it starts is removed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
n=${N:-20}
runs=${RUNS:-5}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/infra/target}
infra=${INFRA:-}
if [ -z "$infra" ]; then
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
  infra="$CARGO_TARGET_DIR/release/infra"
fi
other=${VS:-env INFRA_SSH_PERSIST=0 $infra}
image=$(bash "$repo/scripts/server-image")
work=$(mktemp -d /tmp/infra-fleet-noop.XXXXXX)
label="infra-bench=fleet-noop-$$"
cleanup() { docker ps -aq --filter "label=$label" | xargs -r docker rm -f >/dev/null; rm -rf "$work"; }
trap cleanup EXIT
ssh-keygen -q -t ed25519 -N '' -C infra-bench -f "$work/key"
source "$repo/benches/fleet-workload.sh"

start_servers "$work/servers"
infra_config "$work/servers" "$work/infra"
cd "$work/infra"
"$infra" apply -auto-approve -no-color > "$work/first.log" || { cat "$work/first.log" >&2; exit 1; }
python3 "$repo/benches/timing.py" --runs "$runs" --cpu --label "this build, no-op apply" \
  --label-b "$other, no-op apply" --vs "$other apply -auto-approve" -- "$infra apply -auto-approve"

if command -v perf >/dev/null; then
  for binary in "$infra" "$other"; do
    $binary plan -no-color > /dev/null # the logins are kept before the profiled run
    perf record -a -q -o "$work/perf.data" -- $binary plan -no-color > /dev/null 2>&1
    echo "profile of one no-op plan by process, $binary:"
    perf report -i "$work/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null |
      grep '%' | head -16 | sed 's/^ */  /'
  done
fi
