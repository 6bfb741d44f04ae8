# The fleet-basics workload, shared by benches/fleet-vs-pyinfra.sh and
# benches/fleet-noop.sh: N systemd test servers and infra's configuration for
# them. Sourced; expects $n (servers), $label (the label on every container),
# $image (scripts/server-image) and $work (a scratch directory holding the SSH
# key pair `key`, `key.pub`).

# Starts N systemd servers, waits until each runs and has a host key, and writes
# "port hostkey" lines to $1.
start_servers() {
  local list=$1 ids=()
  for _ in $(seq 1 "$n"); do
    ids+=("$(docker run -d --label "$label" -p 127.0.0.1::22 --cap-add NET_ADMIN --cap-add SYS_ADMIN \
      --tmpfs /run --tmpfs /run/lock -v /sys/fs/cgroup:/sys/fs/cgroup:ro "$image" /sbin/init)")
  done
  : > "$list"
  for id in "${ids[@]}"; do
    docker exec -i "$id" sh -c 'cat > /root/.ssh/authorized_keys' < "$work/key.pub"
    until docker exec "$id" systemctl is-system-running 2>/dev/null | grep -qE 'running|degraded'; do sleep 0.3; done
    until docker exec "$id" test -s /etc/ssh/ssh_host_ed25519_key.pub; do sleep 0.2; done
    echo "$(docker port "$id" 22/tcp | head -1 | sed 's/.*://') $(docker exec "$id" cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)" >> "$list"
  done
}

stop_servers() { docker ps -aq --filter "label=$label" | xargs -r docker rm -f >/dev/null; }

infra_config() { # LIST DIR
  local i=0 port hostkey
  mkdir -p "$2"
  : > "$2/main.infra"
  while read -r port hostkey; do
    i=$((i + 1))
    cat >> "$2/main.infra" <<INFRA
server "s$i" {
  host        = "127.0.0.1"
  port        = $port
  private_key = "$work/key"
  host_key    = "$hostkey"
}
user "app$i" {
  server = server.s$i
  name   = "app"
}
directory "srv$i" {
  server = server.s$i
  path   = "/srv/app"
  owner  = user.app$i.name
  mode   = "0755"
}
file "conf$i" {
  for_each = toset(["a", "b", "c", "d"])
  server   = server.s$i
  path     = "\${directory.srv$i.path}/\${each.key}.conf"
  content  = "setting = \${each.key}\n"
  mode     = "0640"
}
package "base$i" {
  server = server.s$i
  names  = ["sudo", "openssh-server"]
}
service "cron$i" {
  server = server.s$i
  name   = "cron"
}
INFRA
  done < "$1"
}

