#!/usr/bin/env bash
# What the heap holds at its peak during `infra plan -refresh=false` of N
# generated `local` `file` resources: heaptrack's peak heap, split by the part
# of infra that allocated it (the first of the functions below on the
# allocation's stack).
#
#   benches/plan-heap.sh [N]        (default 100000)
#
# Needs heaptrack and rustfilt (Debian: heaptrack; cargo install rustfilt).
# heaptrack sees malloc, not mimalloc, so this builds infra with the
# `system-allocator` feature; the heap is the same objects, the resident
# memory is not (benches/plan-memory.sh measures that, with mimalloc).
set -euo pipefail

n=${1:-100000}
repo=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/infra/target}
command -v heaptrack >/dev/null || { echo "plan-heap: heaptrack is needed (apt-get install heaptrack)" >&2; exit 1; }
command -v rustfilt >/dev/null || { echo "plan-heap: rustfilt is needed (cargo install rustfilt)" >&2; exit 1; }
work=$(mktemp -d /tmp/infra-heap.XXXXXX)
trap 'rm -rf "$work"' EXIT
cargo build --release --manifest-path "$repo/Cargo.toml" --bin infra --features system-allocator --quiet
cp "$CARGO_TARGET_DIR/release/infra" "$work/infra"
# Leave the usual (mimalloc) build in place for the other benches.
cargo build --release --manifest-path "$repo/Cargo.toml" --bin infra --quiet
python3 "$repo/benches/generate.py" "$n" "$work/main.infra"

heaptrack -o "$work/heap" "$work/infra" -chdir "$work" plan -refresh=false >/dev/null 2>"$work/heaptrack.log"
heaptrack_print -f "$work"/heap.*zst --print-peaks 0 --print-allocators 0 --print-temporary 0 \
  --print-leaks 0 --flamegraph-cost-type peak -F "$work/peak.folded" >/dev/null 2>&1
rustfilt <"$work/peak.folded" | python3 -c '
import sys
parts = [
    ("syntax the resource blocks keep (parsed)", ["parse_piece (parser.rs)", "parse_whole (parser.rs)"]),
    ("source text", ["read (loader.rs)", "add<> (source.rs)"]),
    ("decoded configuration (the map of blocks)", ["decode_file (config.rs)"]),
    ("graph (nodes, index, providers chosen)", ["build (graph.rs)"]),
    ("planned values (one per resource)", ["plan (instance.rs)"]),
    ("evaluator table of values", ["set (scope.rs)"]),
    ("rendering the human plan", ["plan_parts (human.rs)", "plan (human.rs)"]),
    ("the plan walk: the changes and the rest", ["(plan.rs)"]),
]
totals = {label: 0 for label, _ in parts}
other = total = 0
for line in sys.stdin:
    stack, _, cost = line.rstrip().rpartition(" ")
    cost = int(cost)
    total += cost
    frames = stack.split(";")
    label = next((l for l, names in parts if any(n in f for f in frames for n in names)), None)
    if label:
        totals[label] += cost
    else:
        other += cost
print(f"peak heap: {total / 1e6:.1f} MB")
for label, cost in totals.items():
    print(f"  {label:45} {cost / 1e6:7.1f} MB")
rest = "everything else"
print(f"  {rest:45} {other / 1e6:7.1f} MB")
'
