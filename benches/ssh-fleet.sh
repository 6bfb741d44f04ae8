#!/usr/bin/env bash
# Converges a fleet of N test servers (containers of scripts/server-image, SSH
# on 127.0.0.1) with the same resources on each, and times the first apply, a
# no-op re-apply (refresh included) and a no-op plan for N = 1, 5 and 20. SET
# chooses them:
#   SET=small (default): sshd-only servers with a group, a user with a key, a
#     directory, five files and a package check;
#   SET=hardened: servers with systemd, and modules/hardened-server.
#
#   benches/ssh-fleet.sh            (needs Docker; FLEETS="1 5 20", ROUNDS=3,
#                                   RUNS=5 to choose)
#   VS=path/to/other/infra benches/ssh-fleet.sh
#                                   (also times the no-op apply 5 times with each
#                                   binary, alternated: how a change moved it; the
#                                   package transaction is then not timed)
#
# Every figure is printed by benches/timing.py: the median and range of ROUNDS
# first applies, each on N fresh servers from an empty state (starting them is
# not timed), and of RUNS no-op applies and plans after a warm-up run. With
# SET=hardened, the ROUNDS first applies alternate with the package transaction
# alone (the module's apt-get update and install, run with docker exec on all N
# servers at once), each on N fresh servers, and the first apply's time beyond
# the transaction is printed pair by pair; a fleet is then converged untimed
# for the no-op figures. Everything it creates is removed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/infra/target}
infra="$CARGO_TARGET_DIR/release/infra"
image=$(bash "$repo/scripts/server-image")
# Run again by timing.py's --prepare as `ssh-fleet.sh --fresh N DIR` (fresh
# servers and an empty state in DIR) or `--packages` (the package transaction),
# with the first run's work directory and label in the environment.
if [ -z "${FLEET_WORK:-}" ]; then
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
  FLEET_WORK=$(mktemp -d /tmp/infra-ssh-fleet.XXXXXX)
  FLEET_LABEL="infra-bench=ssh-fleet-$$"
  export FLEET_WORK FLEET_LABEL
  cleanup() { docker ps -aq --filter "label=$FLEET_LABEL" | xargs -r docker rm -f >/dev/null; rm -rf "$FLEET_WORK"; }
  trap cleanup EXIT
  ssh-keygen -q -t ed25519 -N '' -C infra-bench -f "$FLEET_WORK/key"
fi
work=$FLEET_WORK
label=$FLEET_LABEL

set=${SET:-small}
systemd=(--cap-add NET_ADMIN --cap-add SYS_ADMIN --tmpfs /run --tmpfs /run/lock -v /sys/fs/cgroup:/sys/fs/cgroup:ro)

remove_servers() { docker ps -aq --filter "label=$label" | xargs -r docker rm -f >/dev/null; }

start_servers() {
  local n=$1
  remove_servers
  for i in $(seq 1 "$n"); do
    if [ "$set" = hardened ]; then
      docker run -d --label "$label" -p 127.0.0.1::22 "${systemd[@]}" "$image" /sbin/init >/dev/null
    else
      docker run -d --label "$label" -p 127.0.0.1::22 "$image" >/dev/null
    fi
  done
  for id in $(docker ps -q --filter "label=$label"); do
    docker exec -i "$id" sh -c 'cat > /root/.ssh/authorized_keys' < "$work/key.pub"
    # Host keys are made at start; wait for them (and sshd) before reading one.
    until docker exec "$id" test -s /etc/ssh/ssh_host_ed25519_key.pub && docker exec "$id" pgrep -x sshd >/dev/null; do
      sleep 0.2
    done
    if [ "$set" = hardened ]; then
      until docker exec "$id" systemctl is-system-running 2>/dev/null | grep -qE 'running|degraded'; do sleep 0.3; done
      # Only the container's own network sysctls are written (host_kernel = false).
      docker exec "$id" mount -o remount,rw /proc/sys
    fi
  done
}

hardened_block() {
  local i=$1 port=$2 hostkey=$3
  cat <<INFRA
server "s$i" {
  host           = "127.0.0.1"
  port           = $port
  user           = "admin"
  bootstrap_user = "root"
  sudo           = true
  private_key    = "$work/key"
  host_key       = "$hostkey"
}
module "hardening$i" {
  source      = "$repo/modules/hardened-server"
  server      = server.s$i
  admin_keys  = [file("$work/key.pub")]
  host_kernel = false
}
INFRA
}

write_config() {
  local dir=$1 i=0
  : > "$dir/main.infra"
  for id in $(docker ps -q --filter "label=$label"); do
    i=$((i + 1))
    local port hostkey
    port=$(docker port "$id" 22/tcp | head -1 | sed 's/.*://')
    hostkey=$(docker exec "$id" cat /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f1,2)
    if [ "$set" = hardened ]; then
      hardened_block "$i" "$port" "$hostkey" >> "$dir/main.infra"
      continue
    fi
    cat >> "$dir/main.infra" <<INFRA
server "s$i" {
  host        = "127.0.0.1"
  port        = $port
  private_key = "$work/key"
  host_key    = "$hostkey"
}
group "ops$i" {
  server = server.s$i
  name   = "ops"
}
user "app$i" {
  server = server.s$i
  name   = "app"
  groups = [group.ops$i.name]
}
authorized_key "app$i" {
  server = server.s$i
  user   = user.app$i.name
  key    = file("$work/key.pub")
}
directory "srv$i" {
  server = server.s$i
  path   = "/srv/app"
  owner  = user.app$i.name
}
file "conf$i" {
  for_each = toset(["a", "b", "c", "d", "e"])
  server   = server.s$i
  path     = "\${directory.srv$i.path}/\${each.key}.conf"
  content  = "setting = \${each.key}\n"
  mode     = "0640"
}
package "base$i" {
  server = server.s$i
  names  = ["sudo", "openssh-server"]
}
INFRA
  done
}

# The module's package resource by hand: the same names, one apt-get run per
# server (the test image has no package lists, so an update first), every
# server at once.
package_transaction() {
  set -euo pipefail
  local names ids pids=()
  ids=$(docker ps -q --filter "label=$label")
  [ -n "$ids" ] || { echo "ssh-fleet: no servers for the package transaction" >&2; return 1; }
  names=$(python3 -c "import re, sys; m = re.search(r'package \"hardening\" \\{.*?names\s*=\s*\[(.*?)\]', open(sys.argv[1]).read(), re.S); print(' '.join(re.findall(r'\"([^\"]+)\"', m.group(1))))" "$repo/modules/hardened-server/main.infra")
  for id in $ids; do
    docker exec "$id" sh -c "apt-get -q update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends $names >/dev/null" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
}

case ${1:-} in
  --fresh)
    start_servers "$2"
    rm -rf "$3" && mkdir -p "$3"
    write_config "$3"
    exit 0
    ;;
  --packages)
    package_transaction
    exit 0
    ;;
esac

rounds=${ROUNDS:-3}
runs=${RUNS:-5}
timing() { python3 "$repo/benches/timing.py" "$@"; }

for n in ${FLEETS:-1 5 20}; do
  dir="$work/fleet-$n"
  first="$set, $n servers: first apply"
  if [ "$set" = hardened ] && [ -z "${VS:-}" ]; then
    # The first apply alternated with the package transaction alone, each on
    # fresh servers, so the mirror's and the machine's drift hit both; then a
    # fleet converged untimed for the no-op figures.
    timing --runs "$rounds" --warmup 0 --difference --label "$first" \
      --label-b "$set, $n servers: package transaction alone" \
      --prepare "bash $repo/benches/ssh-fleet.sh --fresh $n $dir" \
      --vs "bash $repo/benches/ssh-fleet.sh --packages" -- "cd $dir && $infra apply -auto-approve"
    bash "$repo/benches/ssh-fleet.sh" --fresh "$n" "$dir"
    (cd "$dir" && "$infra" apply -auto-approve >/dev/null)
  else
    timing --runs "$rounds" --warmup 0 --label "$first" --prepare "bash $repo/benches/ssh-fleet.sh --fresh $n $dir" -- \
      "cd $dir && $infra apply -auto-approve"
  fi
  timing --runs "$runs" --label "$set, $n servers: no-op apply (refresh included)" -- \
    "cd $dir && $infra apply -auto-approve"
  timing --runs "$runs" --label "$set, $n servers: no-op plan" -- "cd $dir && $infra plan -detailed-exitcode"
  if [ -n "${VS:-}" ]; then
    timing --runs 5 --label "$set, $n servers: no-op apply, this build" \
      --label-b "$VS" --vs "cd $dir && $VS apply -auto-approve" -- "cd $dir && $infra apply -auto-approve"
  fi
  remove_servers
done
