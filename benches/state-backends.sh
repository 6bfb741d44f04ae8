#!/usr/bin/env bash
# What keeping state in PostgreSQL costs against the local file: `infra apply` of N
# `local` file resources from an empty state (one journal write per resource, a
# snapshot or version at the end), a no-op plan (one load, one lock), and the
# lock taken while another process holds it (refused at once, holder named).
#
#   benches/state-backends.sh [SIZE ...]          (default: 100 1000)
#
# PostgreSQL runs on 127.0.0.1 (scripts/postgres-server, fsync on, same disk).
# Each row is timed with hyperfine when installed (apt-get install hyperfine);
# every apply starts from nothing (the state and the files removed, the schema dropped).
set -euo pipefail
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 1000)
repo=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/infra/target}
# The backends' cost is IO and round trips: the dev build (dependencies optimised)
# measures it as well as a release build; INFRA_BENCH_PROFILE=release for that one.
profile=${INFRA_BENCH_PROFILE:-dev}
if [ "$profile" = release ]; then
  cargo build --release --manifest-path "$repo/Cargo.toml" --quiet
  infra="$CARGO_TARGET_DIR/release/infra"
else
  cargo build --manifest-path "$repo/Cargo.toml" --quiet
  infra="$CARGO_TARGET_DIR/debug/infra"
fi
work=$(mktemp -d /tmp/infra-state-bench.XXXXXX)

coproc PG { bash "$repo/scripts/postgres-server"; }
read -r line <&"${PG[0]}"
export INFRA_PG=${line#listening on }
echo "PostgreSQL: $INFRA_PG"

time_it() {
  local label=$1; shift
  if command -v hyperfine >/dev/null; then
    hyperfine --warmup 1 --runs 5 --style basic --export-markdown /dev/stdout "$@" | tail -n +3 | sed "s/^/$label /"
  else
    local start end
    start=$(date +%s.%N); sh -c "$*" >/dev/null 2>&1 || true; end=$(date +%s.%N)
    printf '%s %.3f s (one run; install hyperfine for medians)\n' "$label" "$(echo "$end - $start" | bc)"
  fi
}

for n in "${sizes[@]}"; do
  for backend in local postgres; do
    dir="$work/$n-$backend"
    mkdir -p "$dir"
    python3 - "$n" "$dir/main.infra" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    for i in range(n):
        f.write(f'file "f{i}" {{\n  path    = "out/f{i}"\n  content = "resource {i}\\n"\n}}\n\n')
PY
    [ "$backend" = postgres ] && printf 'backend "postgres" {\n  conn = env("INFRA_PG")\n}\n' >"$dir/backend.infra"
    reset="rm -rf $dir/out $dir/infra.state* $dir/.infra; psql -q $INFRA_PG -c 'DROP SCHEMA IF EXISTS infra CASCADE' 2>/dev/null"
    echo "== $n resources, $backend state =="
    time_it "apply from empty:" "$reset; $infra -chdir $dir apply -auto-approve -parallelism 10"
    time_it "no-op plan:" "$infra -chdir $dir plan -detailed-exitcode"
  done
done
exec {PG[1]}>&-
rm -rf "$work"
