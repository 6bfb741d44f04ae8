#!/usr/bin/env bash
# What withholding secrets from saved plans costs: `infra plan -out FILE` then
# `infra apply FILE` of N `local` files from empty state, once with a sensitive
# variable in every file (apply plans again to get the secret back and checks
# its digest) and once without.
#
#   benches/saved-plan-secrets.sh [N]          (default: 200)
#
# Timed by benches/timing.py, the two alternated (A B A B), each run from nothing:
# medians, ranges and the ratio taken pair by pair.
set -euo pipefail
n=${1:-200}
repo=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/infra/target}
cargo build --manifest-path "$repo/Cargo.toml" --quiet
infra="$CARGO_TARGET_DIR/debug/infra"
work=$(mktemp -d /tmp/infra-saved-plan-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

for kind in secret plain; do
  mkdir -p "$work/$kind"
  if [ "$kind" = secret ]; then
    printf 'variable "token" {\n  sensitive = true\n}\n' > "$work/$kind/vars.infra"
    content='"${var.token}-${count.index}"'
  else
    content='"plain-${count.index}"'
  fi
  printf 'file "f" {\n  count   = %s\n  path    = "out/f-${count.index}"\n  content = %s\n}\n' "$n" "$content" \
    > "$work/$kind/main.infra"
done
round() {
  local kind=$1 var=()
  [ "$kind" = secret ] && var=(-var token=hunter2)
  echo "cd $work/$kind && rm -rf out infra.state* plan.bin && $infra plan -out plan.bin ${var[*]} >/dev/null && $infra apply plan.bin ${var[*]} >/dev/null"
}
python3 "$repo/benches/timing.py" --runs 10 --label "with a secret" --label-b "without" --vs "$(round plain)" -- "$(round secret)"
