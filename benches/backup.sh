#!/usr/bin/env bash
# Backup and restore throughput of `backup` on one systemd test server
# (scripts/server-image, restic from Debian, the repository a path on the same
# server): SIZE_MIB (default 1024) of incompressible files in 1 MiB files,
# backed up from nothing, backed up again after 1 % of the files changed, and
# restored to an empty directory. Each step is one `infra` command, timed by
# benches/timing.py: the median and range of RUNS (default 5) runs after one
# warm-up, each run prepared untimed (an empty repository for the first step,
# 1 % of the files rewritten for the second, the restore target removed for the
# third). MiB/s is the whole set over the median.
#
#   benches/backup.sh            (needs Docker; SIZE_MIB=256 for a quicker run)
#
# Then the same for a Docker volume on the local engine. Everything it creates
# is removed (the backup image stays, as built images do).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/infra/target}
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
infra="$CARGO_TARGET_DIR/release/infra"
image=$(bash "$repo/scripts/server-image")
work=$(mktemp -d /tmp/infra-backup-bench.XXXXXX)
label="infra-bench=backup-$$"
cleanup() {
  docker ps -aq --filter "label=$label" | xargs -r docker rm -f >/dev/null
  docker rm -f "infra-backup-bench-$$" >/dev/null 2>&1 || true
  docker volume rm "infra-bench-data-$$" "infra-bench-repository-$$" "infra-backup-bench-$$" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
size=${SIZE_MIB:-1024}
ssh-keygen -q -t ed25519 -N '' -C infra-bench -f "$work/key"
id=$(docker run -d --label "$label" -p 127.0.0.1::22 --cap-add NET_ADMIN --cap-add SYS_ADMIN \
  --tmpfs /run --tmpfs /run/lock -v /sys/fs/cgroup:/sys/fs/cgroup:ro "$image" /sbin/init)
docker exec -i "$id" sh -c 'cat > /root/.ssh/authorized_keys' < "$work/key.pub"
until docker exec "$id" test -s /etc/ssh/ssh_host_ed25519_key.pub && docker exec "$id" pgrep -x sshd >/dev/null; do sleep 0.2; done
port=$(docker port "$id" 22/tcp | head -n 1 | cut -d: -f2)
host_key=$(docker exec "$id" cat /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f1,2)
docker exec "$id" sh -c "mkdir -p /srv/data && for i in \$(seq 1 $size); do head -c 1048576 /dev/urandom > /srv/data/f\$i; done"
cat > "$work/main.infra" <<CONFIG
server "box" {
  host        = "127.0.0.1"
  port        = $port
  private_key = "$work/key"
  host_key    = "$host_key"
}

backup "data" {
  server     = server.box
  paths      = ["/srv/data"]
  repository = "/var/backups/data"
  password   = sensitive("benchmark")
  schedule   = ""
}
CONFIG
cd "$work"
"$infra" apply -auto-approve >/dev/null
runs=${RUNS:-5}
timed() { # LABEL PREPARE COMMAND: median and range of $runs runs, and MiB/s at the median
  local line
  line=$(python3 "$repo/benches/timing.py" --runs "$runs" --label "$1" --prepare "$2" -- "$3")
  echo "$line"
  awk -v m="$size" '{ for (i = 1; i <= NF; i++) if ($i == "median") printf "  %.1f MiB/s at the median\n", m / $(i + 1) }' <<<"$line"
}
changed=$(( size / 100 > 0 ? size / 100 : 1 ))
rewrite="docker exec $id sh -c 'for i in \$(seq 1 $changed); do head -c 1048576 /dev/urandom > /srv/data/f\$i; done'"
timed "backup from nothing" "docker exec $id sh -c 'rm -rf /var/backups/data && /usr/local/sbin/infra-backup init data'" \
  "cd $work && $infra backup run backup.data"
timed "backup after $changed MiB changed" "$rewrite" "cd $work && $infra backup run backup.data"
timed "restore to an empty dir" "docker exec $id rm -rf /srv/restored" \
  "cd $work && $infra restore backup.data --to /srv/restored"
docker exec "$id" sh -c 'cd /srv/data && sha256sum f* | sort > /tmp/a; cd /srv/restored/srv/data && sha256sum f* | sort > /tmp/b; cmp -s /tmp/a /tmp/b' \
  && echo "restored files identical to the source" || { echo "restored files differ" >&2; exit 1; }
echo "($size MiB in 1 MiB files; MiB/s is the whole set over the median time of the step)"

# The same on the local Docker Engine: a volume of SIZE_MIB backed up by the
# `backup` resource's runner container (the quickstart's backup image), the
# repository on another volume.
base=$(bash "$repo/scripts/base-image")
mkdir -p "$work/docker" && cd "$work/docker"
cat > main.infra <<CONFIG
image "backup" {
  name         = "infra-bench/backup"
  context      = "$repo/examples/quickstart/images/backup"
  build_args   = { BASE = "$base" }
  keep_locally = true
}

volume "data" {
  name = "infra-bench-data-$$"
}

volume "repository" {
  name = "infra-bench-repository-$$"
}

backup "volume" {
  name       = "bench-$$"
  image      = image.backup.tag
  volume     = volume.data.name
  mounts     = ["\${volume.repository.name}:/repository"]
  repository = "/repository/data"
  password   = sensitive("benchmark")
  schedule   = ""
}
CONFIG
"$infra" apply -auto-approve >/dev/null
docker run --rm -v "infra-bench-data-$$:/d" "$base" sh -c "for i in \$(seq 1 $size); do head -c 1048576 /dev/urandom > /d/f\$i; done"
runner="infra-backup-bench-$$"
volume_rewrite="docker run --rm -v infra-bench-data-$$:/d $base sh -c 'for i in \$(seq 1 $changed); do head -c 1048576 /dev/urandom > /d/f\$i; done'"
timed "volume: backup from nothing" \
  "docker exec $runner sh -c 'rm -rf /repository/data && /usr/local/sbin/infra-backup init bench-$$'" \
  "cd $work/docker && $infra backup run backup.volume"
timed "volume: after $changed MiB changed" "$volume_rewrite" "cd $work/docker && $infra backup run backup.volume"
timed "volume: restore to an empty dir" "docker exec $runner rm -rf /restored" \
  "cd $work/docker && $infra restore backup.volume --to /restored"
"$infra" destroy -auto-approve >/dev/null
