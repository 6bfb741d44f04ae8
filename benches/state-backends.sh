#!/usr/bin/env bash
# What keeping state in PostgreSQL costs against the local file: `infra apply` of N
# `local` file resources from an empty state (one journal write per resource, a
# snapshot or version at the end), a no-op plan (one load, one lock), and the
# lock taken while another process holds it (refused at once, holder named).
#
#   benches/state-backends.sh [SIZE ...]          (default: 100 1000)
#
# PostgreSQL runs on 127.0.0.1 (scripts/postgres-server, fsync on, same disk).
# Each pair is timed by benches/timing.py, PostgreSQL and the local file alternated
# (A B A B), medians, ranges and the ratio taken pair by pair; every apply starts
# from nothing (the state and the files removed, the schema dropped).
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

timing="python3 $repo/benches/timing.py"
for n in "${sizes[@]}"; do
  for backend in local postgres; do
    dir="$work/$n-$backend"
    mkdir -p "$dir"
    python3 "$repo/benches/generate.py" "$n" "$dir/main.infra"
  done
  printf 'backend "postgres" {\n  conn = env("INFRA_PG")\n}\n' >"$work/$n-postgres/backend.infra"
  local_dir="$work/$n-local" pg_dir="$work/$n-postgres"
  reset="rm -rf $local_dir/out $local_dir/infra.state* $local_dir/.infra $pg_dir/out $pg_dir/.infra; psql -q $INFRA_PG -c 'DROP SCHEMA IF EXISTS infra CASCADE' 2>/dev/null"
  echo "== $n resources: state in PostgreSQL (A) against the local file (B), alternated =="
  $timing --runs 5 --prepare "$reset" --label "apply from empty, postgres" --label-b "apply from empty, local" \
    --vs "$infra -chdir $local_dir apply -auto-approve -parallelism 10" -- "$infra -chdir $pg_dir apply -auto-approve -parallelism 10"
  $infra -chdir "$local_dir" apply -auto-approve -parallelism 10 >/dev/null
  $infra -chdir "$pg_dir" apply -auto-approve -parallelism 10 >/dev/null
  $timing --runs 5 --label "no-op plan, postgres" --label-b "no-op plan, local" \
    --vs "$infra -chdir $local_dir plan -detailed-exitcode" -- "$infra -chdir $pg_dir plan -detailed-exitcode"
done
exec {PG[1]}>&-
rm -rf "$work"
