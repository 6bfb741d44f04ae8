#!/usr/bin/env bash
# Plan time of N resources written as M instances of one module (`for_each`
# over a map of M keys, N/M `file` resources in the module) next to the same
# N resources written flat, both `infra plan -refresh=false` from no state.
#
#   benches/module-instances.sh [N M]          (default: 10000 1000)
#
# Prints, through benches/timing.py, the median and range of 7 whole-process
# wall times of each after one warm-up, the two alternated (A B A B) with the
# ratio loop/flat taken pair by pair; then the peak memory of one run of each
# from /usr/bin/time. The configurations come from benches/generate.py.
set -euo pipefail

n=${1:-10000}
m=${2:-1000}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${INFRA_BENCH_WORK:-$(mktemp -d /tmp/infra-bench.XXXXXX)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/infra/target}

cargo build --release --manifest-path "$repo/Cargo.toml" --quiet
infra="$CARGO_TARGET_DIR/release/infra"

mkdir -p "$work/flat" "$work/loop"
python3 "$repo/benches/generate.py" "$n" "$work/flat/main.infra"
python3 "$repo/benches/generate.py" "$n" "$work/loop/main.infra" --modules "$m"
# Both plan the same number of creates, or the comparison means nothing.
for form in flat loop; do
  creates=$(cd "$work/$form" && "$infra" plan -refresh=false -no-color | grep -c '^  + ' || true)
  [ "$creates" = "$n" ] || { echo "module-instances: $form plans $creates creates, not $n" >&2; exit 1; }
done

echo "== $n resources: $m module instances of $((n / m)) vs flat =="
python3 "$repo/benches/timing.py" --runs 7 \
  --label "loop ($m instances)" --label-b "flat" \
  --vs "cd $work/flat && $infra plan -refresh=false" -- "cd $work/loop && $infra plan -refresh=false"
for form in loop flat; do
  printf '%s: peak RSS %s KB\n' "$form" \
    "$(cd "$work/$form" && /usr/bin/time -f '%M' "$infra" plan -refresh=false 2>&1 >/dev/null | tail -n1)"
done
