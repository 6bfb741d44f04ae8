#!/usr/bin/env bash
# Wall time and peak memory of `infra plan -refresh=false` on N generated
# `local` `file` resources (benches/generate.py), for each N given.
#
#   benches/plan-memory.sh [N ...]                   (default: 10000 100000)
#   BEFORE=/path/to/older/infra benches/plan-memory.sh [N ...]
#
# Prints, from benches/timing.py, the median and range of 7 runs after one
# warm-up: wall seconds and peak RSS in MiB (the kernel's ru_maxrss). With
# BEFORE, that build and this one run alternated (A B A B) and the ratio of
# wall times is taken pair by pair. Peak RSS moves by tens of MB from run to
# run (how much freed memory mimalloc still holds when the peak comes), which
# is why it is a median of runs.
set -euo pipefail

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 100000)
repo=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/infra/target}
cargo build --release --manifest-path "$repo/Cargo.toml" --bin infra --quiet
infra="$CARGO_TARGET_DIR/release/infra"
work=$(mktemp -d /tmp/infra-plan-memory.XXXXXX)
trap 'rm -rf "$work"' EXIT

for n in "${sizes[@]}"; do
  mkdir -p "$work/$n"
  python3 "$repo/benches/generate.py" "$n" "$work/$n/main.infra"
  echo "--- $n resources, plan -refresh=false"
  plan="-chdir $work/$n plan -refresh=false"
  if [ -n "${BEFORE:-}" ]; then
    python3 "$repo/benches/timing.py" --runs 7 --rss --label "after $n" --label-b "before $n" \
      --vs "$BEFORE $plan" -- "$infra $plan"
  else
    python3 "$repo/benches/timing.py" --runs 7 --rss --label "$n" -- "$infra $plan"
  fi
done
