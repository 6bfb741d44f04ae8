#!/usr/bin/env bash
# Refresh of 10, 100 and 1000 EC2 instances against moto (scripts/moto-server
# on a free 127.0.0.1 port): the API calls one `infra plan` makes, counted from
# moto's request log; the plan's wall time as the median and range of 5 runs
# after one warm-up (benches/timing.py); infra's own CPU time in the counted
# plan (/usr/bin/time; the rest is moto answering); and how long the one apply
# from nothing took (a single run: it needs a fresh emulator). The target:
# calls per refresh independent of the instance count, but for pagination.
#
#   benches/aws-refresh.sh              (COUNTS="10 100 1000" to choose)
#
# Uses the dev build (dependencies optimised, aws-sdk-ec2 not: see Cargo.toml);
# the time is mostly moto's own, a Python emulator.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/infra/target}
cargo build --quiet --manifest-path "$repo/Cargo.toml"
infra="$CARGO_TARGET_DIR/debug/infra"
work=$(mktemp -d /tmp/infra-aws-refresh.XXXXXX)
cleanup() { [ -n "${moto:-}" ] && kill "$moto" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true

printf '| instances | API calls per refresh | DescribeInstances calls | plan wall time, median (range) | infra CPU in one plan | apply from empty (one run) |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n'
for n in ${COUNTS:-10 100 1000}; do
  dir="$work/$n"; mkdir -p "$dir"
  python3 "$repo/scripts/moto-server" --requests "$dir/requests.log" > "$dir/moto.out" 2>/dev/null < <(sleep 7200) &
  moto=$!
  until grep -q listening "$dir/moto.out" 2>/dev/null; do sleep 0.1; done
  endpoint="http://$(sed -n 's/^listening on //p' "$dir/moto.out")"
  cat > "$dir/main.infra" <<INFRA
provider "aws" {
  region   = "eu-west-1"
  endpoint = "$endpoint"
}
vpc "main" {
  cidr = "10.42.0.0/16"
}
subnet "a" {
  vpc  = vpc.main.id
  cidr = "10.42.0.0/20"
}
firewall "web" {
  vpc = vpc.main.id
}
instance "web" {
  count           = $n
  ami             = "ami-12c6146b"
  type            = "t3.micro"
  subnet          = subnet.a.id
  security_groups = [firewall.web.id]
}
INFRA
  (cd "$dir" && /usr/bin/time -f %e -o "$dir/apply-time" "$infra" apply -auto-approve -parallelism=20 >/dev/null)
  before=$(wc -l < "$dir/requests.log")
  (cd "$dir" && /usr/bin/time -f '%e %U %S' -o "$dir/time" "$infra" plan >/dev/null)
  calls=$(tail -n +"$((before + 1))" "$dir/requests.log")
  total=$(printf '%s\n' "$calls" | grep -c .)
  instances=$(printf '%s\n' "$calls" | grep -c '^DescribeInstances$' || true)
  read -r _ user sys < "$dir/time"
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
  timed=$(python3 "$repo/benches/timing.py" --runs 5 --label plan -- "cd $dir && $infra plan")
  wall=$(printf '%s\n' "$timed" | sed -E 's/^plan: median ([0-9.]+ s) \(range ([0-9.]+)-([0-9.]+ s).*/\1 (\2–\3)/')
  printf '| %s | %s | %s | %s | %s s | %s s |\n' "$n" "$total" "$instances" "$wall" "$cpu" "$(cat "$dir/apply-time")"
  # moto holds everything in memory: stopping it is the clean-up.
  kill "$moto"; wait "$moto" 2>/dev/null || true; moto=
done
