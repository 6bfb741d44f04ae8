#!/usr/bin/env bash
# The pull-request flow for any CI system (examples/ci/infra.yml is the same on GitHub):
#
#   examples/ci/ci.sh plan    on a pull request: fmt -check, validate, plan.
#                             Writes plan.bin (the reviewed plan, keep it), plan.md
#                             (the comment to post, bounded in size) and plan-full.md.
#   examples/ci/ci.sh apply   after merge, with plan.bin from the review: applies
#                             exactly it, or refuses if state or configuration changed.
#   examples/ci/ci.sh drift   nightly: exits 2 and prints a report when the real
#                             world differs from state, 0 when it does not.
#
# Environment: INFRA_DIR (configuration directory, default .), INFRA_ENV (the
# environment, default `default`), INFRA_PG (the shared state, if the
# configuration's backend reads it), and the providers' credentials.
set -euo pipefail
stage=${1:?usage: ci.sh plan|apply|drift}
dir=${INFRA_DIR:-.}
out=$(pwd)

case "$stage" in
  plan)
    infra -chdir "$dir" fmt -check
    infra -chdir "$dir" validate
    # -detailed-exitcode: 0 nothing to do, 2 changes; both are a successful plan.
    status=0
    infra -chdir "$dir" plan -out "$out/plan.bin" -format markdown -detailed-exitcode >"$out/plan.md" || status=$?
    [ "$status" = 0 ] || [ "$status" = 2 ] || exit "$status"
    infra -chdir "$dir" show -format markdown -full "$out/plan.bin" >"$out/plan-full.md"
    echo "plan: $( [ "$status" = 2 ] && echo changes || echo 'no changes' ); see plan.md"
    ;;
  apply)
    [ -f "$out/plan.bin" ] || { echo "no plan.bin: apply only what was reviewed" >&2; exit 1; }
    infra -chdir "$dir" apply "$out/plan.bin"
    ;;
  drift)
    infra -chdir "$dir" plan -refresh-only -detailed-exitcode
    ;;
  *)
    echo "unknown stage $stage: plan, apply or drift" >&2
    exit 1
    ;;
esac
