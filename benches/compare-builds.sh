#!/usr/bin/env bash
# Times two builds of infra against each other on the plan/apply benchmark of
# BENCHMARKS.md (generated configurations of N independent `local` `file`
# resources), to show that a change made nothing slower.
#
#   benches/compare-builds.sh BEFORE_REV [AFTER_REV] [SIZE ...]   (default: HEAD; 1000 10000)
#
# Each revision is built in release mode from a git worktree, in a target
# directory of its own (cargo fingerprints workspace crates by relative path, so
# sharing the checkout's would leave it stale artifacts), and copied aside; with
# INFRA_BENCH_WORK pointing at an earlier run, its binaries are used again. Every
# figure is printed by benches/timing.py: the median and range of whole-process
# wall times after one warm-up, the two builds alternated (A B A B), with the
# ratio after/before taken pair by pair (below 1: the change is faster).
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 BEFORE_REV [AFTER_REV] [SIZE ...]" >&2; exit 2; }
before_rev=$1
after_rev=${2:-HEAD}
shift $(( $# >= 2 ? 2 : 1 ))
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000)
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${INFRA_BENCH_WORK:-$(mktemp -d /tmp/infra-compare.XXXXXX)}
export CARGO_TARGET_DIR=${INFRA_COMPARE_TARGET:-$HOME/.cache/infra/target-compare}
timing="python3 $repo/benches/timing.py"

build() { # REV NAME: a release binary of REV at $work/NAME
  local rev=$1 name=$2 tree="$work/tree-$2"
  [ -x "$work/$name" ] && { echo "$name: $work/$name, built before"; return; }
  git -C "$repo" worktree add --detach --force "$tree" "$rev" >/dev/null
  cargo build --release --quiet --manifest-path "$tree/Cargo.toml"
  cp "$CARGO_TARGET_DIR/release/infra" "$work/$name"
  git -C "$repo" worktree remove --force "$tree"
  echo "$name: $(git -C "$repo" rev-parse --short "$rev")"
}
build "$before_rev" before
build "$after_rev" after

for n in "${sizes[@]}"; do
  dir="$work/$n"
  mkdir -p "$dir"
  python3 "$repo/benches/generate.py" "$n" "$dir/main.infra"
  echo "== $n resources =="
  reset="rm -rf $dir/out $dir/infra.state* $dir/.infra"
  $timing --runs 5 --prepare "$reset" --label "after: plan -refresh=false" --label-b "before: plan -refresh=false" \
    --vs "cd $dir && $work/before plan -refresh=false" -- "cd $dir && $work/after plan -refresh=false"
  $timing --runs 3 --prepare "$reset" --label "after: apply from empty" --label-b "before: apply from empty" \
    --vs "cd $dir && $work/before apply -auto-approve" -- "cd $dir && $work/after apply -auto-approve"
  (cd "$dir" && $reset && "$work/after" apply -auto-approve >/dev/null)
  $timing --runs 5 --label "after: plan (refresh)" --label-b "before: plan (refresh)" \
    --vs "cd $dir && $work/before plan" -- "cd $dir && $work/after plan"
done
echo "work files left in $work"
