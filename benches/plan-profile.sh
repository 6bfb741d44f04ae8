#!/usr/bin/env bash
# Where `infra plan -refresh=false` spends its time on N generated `local` `file`
# resources (benches/generate.py): perf samples the release build with call
# graphs, and this prints each phase's inclusive share of the samples (a sample
# counts for a phase when the phase's function is on its stack) and the run's
# wall time and peak memory from /usr/bin/time.
#
#   benches/plan-profile.sh [N]        (default 100000)
#
# Needs perf (Debian: linux-perf). The phases are the functions named below;
# shares of nested phases (parse inside load) overlap. A large file is parsed in
# pieces on other threads: those samples are not inside `load` (its thread waits
# without samples) and show on their own line.
set -euo pipefail

n=${1:-100000}
repo=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/infra/target}
command -v perf >/dev/null || { echo "plan-profile: perf is needed (apt-get install linux-perf)" >&2; exit 1; }

cargo build --release --manifest-path "$repo/Cargo.toml" --quiet
infra="$CARGO_TARGET_DIR/release/infra"
work=$(mktemp -d /tmp/infra-profile.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 "$repo/benches/generate.py" "$n" "$work/main.infra"

/usr/bin/time -f "wall %e s, peak RSS %M KB" "$infra" -chdir "$work" plan -refresh=false 2>&1 >/dev/null | tail -n1
perf record --quiet -F 199 --call-graph dwarf,32768 -o "$work/perf.data" -- \
  "$infra" -chdir "$work" plan -refresh=false >/dev/null 2>&1
perf report -i "$work/perf.data" --children --stdio -g none --sort symbol 2>/dev/null | python3 -c '
import re, sys
phases = [
    ("load the configuration (read, parse, decode)", "infra_lang::loader::load"),
    ("  parse, on the main thread (nesting scan)", "infra_syntax::parser::parse"),
    ("  parse, pieces on other threads (pest + tree)", "infra_syntax::parser::parse_piece"),
    ("build the graph", "infra_engine::graph::build"),
    ("plan walk (evaluate, propose, provider plan)", "infra_engine::plan::plan"),
    ("  plan one resource block", "infra_engine::plan::Planner::plan_resource_in"),
    ("render the human plan", "infra::render::human::plan_in_parts"),
    ("free the plan at the end", "core::ptr::drop_in_place<infra_core::plan::Plan>"),
    ("free the configuration at the end", "core::ptr::drop_in_place<infra::commands::Prepared>"),
]
shares = {}
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+)%\s+[\d.]+%\s+\[\.\]\s+(.*)$", line)
    if m:
        # The symbol ends where the padding before the next column starts.
        shares.setdefault(m.group(2).split("  ")[0].strip(), float(m.group(1)))
for label, symbol in phases:
    # An async function samples as its closure.
    share = shares.get(symbol, shares.get(symbol + "::{{closure}}"))
    print(f"{label:48} {share:5.1f} %" if share is not None else f"{label:48}   (no samples)")
'
