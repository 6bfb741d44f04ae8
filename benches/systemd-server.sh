# Sourced by the benchmarks that need one systemd test server: starts a
# container of scripts/server-image with systemd as PID 1 and SSH published on
# 127.0.0.1, authorizes a fresh key for root, and waits until systemd is up.
# Needs `repo` and `work` set; sets `id` (the container), `port` (SSH on
# 127.0.0.1) and `key` (the private key's path), and removes the container and
# `work` on exit. $1 names the benchmark in the container's label.
image=$(bash "$repo/scripts/server-image")
id=$(docker run -d --label "infra-bench=$1" -p 127.0.0.1::22 --cap-add NET_ADMIN --cap-add SYS_ADMIN \
  --tmpfs /run --tmpfs /run/lock -v /sys/fs/cgroup:/sys/fs/cgroup:ro "$image" /sbin/init)
trap 'docker rm -f "$id" >/dev/null; rm -rf "$work"' EXIT
port=$(docker port "$id" 22/tcp | head -n1 | sed 's/.*://')
key="$work/id_ed25519"
ssh-keygen -q -t ed25519 -N '' -f "$key"
docker exec -i "$id" sh -c 'cat > /root/.ssh/authorized_keys' < "$key.pub"
for _ in $(seq 300); do
  case $(docker exec "$id" systemctl is-system-running 2>/dev/null || true) in running|degraded) break ;; esac
  sleep 0.2
done
