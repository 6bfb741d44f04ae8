#!/usr/bin/env bash
# The quickstart stack (web app, PostgreSQL, Redis, RabbitMQ, from the same
# locally built images) under docker-compose and under infra, in one run:
#   cold: nothing running -> the web app healthy (one run each)
#   no-op: everything up, nothing to do (RUNS runs each, alternated, by
#          benches/timing.py: median and range)
#   update: the web app's GREETING changed while a client sends requests,
#           RUNS times (default 5), the tools in turn
# For an update it prints the command's wall time and the requests that failed
# while it ran (until the new greeting answers, plus half a second); at the end
# the medians and ranges of both. compose recreates the web container (its
# only way); infra runs it behind its own proxy (the quickstart's default).
#
#   benches/update-vs-compose.sh     (needs Docker and docker-compose)
#   INFRA=path/to/infra benches/update-vs-compose.sh   (a binary already built)
#
# The client: one request at a time, a new connection each, 10 ms apart, 5 s
# timeout (benches/update-load.py). Everything the script creates is removed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${INFRA:-}" ]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/infra/target}
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
  INFRA="$CARGO_TARGET_DIR/release/infra"
fi
base=$(bash "$repo/scripts/base-image")
work=$(mktemp -d /tmp/infra-update-bench.XXXXXX)
port=${BENCH_PORT:-18180}
compose_port=$port
infra_port=$((port + 1))
runs=${RUNS:-5}

for name in postgres redis queue web; do
  docker build -q --build-arg "BASE=$base" -t "benchu/$name:latest" "$repo/examples/quickstart/images/$name" >/dev/null
done

cat > "$work/docker-compose.yml" <<YML
version: "2.4"
services:
  postgres:
    image: benchu/postgres:latest
    container_name: benchuc-postgres
    environment: { POSTGRES_USER: app, POSTGRES_DB: app, POSTGRES_PASSWORD: benchpassword }
    volumes: [ "db:/var/lib/postgresql/data" ]
    networks: { app: { aliases: [ postgres ] } }
    healthcheck: { test: [ "CMD", "pg_isready", "-h", "127.0.0.1", "-U", "app", "-d", "app" ], interval: 1s, retries: 60 }
  redis:
    image: benchu/redis:latest
    container_name: benchuc-redis
    networks: { app: { aliases: [ redis ] } }
    healthcheck: { test: [ "CMD", "redis-cli", "ping" ], interval: 1s, retries: 30 }
  queue:
    image: benchu/queue:latest
    container_name: benchuc-queue
    networks: { app: { aliases: [ queue ] } }
    healthcheck: { test: [ "CMD", "rabbitmq-diagnostics", "-q", "ping" ], interval: 2s, timeout: 10s, retries: 60 }
  web:
    image: benchu/web:latest
    container_name: benchuc-web
    environment:
      GREETING: \${GREETING:-hello}
      DATABASE_URL: postgresql://app:benchpassword@postgres:5432/app
      REDIS_HOST: redis
      AMQP_URL: amqp://guest:guest@queue:5672/%2F
    ports: [ "127.0.0.1:$compose_port:8080" ]
    networks: [ app ]
    healthcheck: { test: [ "CMD", "python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health')" ], interval: 1s, retries: 30 }
    depends_on:
      postgres: { condition: service_healthy }
      redis: { condition: service_healthy }
      queue: { condition: service_healthy }
networks: { app: {} }
volumes: { db: {} }
YML

mkdir -p "$work/infra"
cp -r "$repo/examples/quickstart/." "$work/infra/"
# Like for like: the compose file has no backups.
sed -i '/^# --- backups/,/^# --- end of backups/d' "$work/infra/main.infra"
infra_vars=(-var "base_image=$base" -var stack=benchui -var "web_port=$infra_port" -var images=registry
            -var 'registry_images={ postgres = "benchu/postgres:latest", redis = "benchu/redis:latest", queue = "benchu/queue:latest" }')

cleanup() {
  (cd "$work" && docker-compose -p benchuc down -v >/dev/null 2>&1) || true
  (cd "$work/infra" && "$INFRA" destroy -auto-approve "${infra_vars[@]}" >/dev/null 2>&1) || true
  docker rmi benchu/postgres:latest benchu/redis:latest benchu/queue:latest benchu/web:latest >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

seconds() { python3 -c 'import time; print(f"{time.monotonic():.3f}")'; }
wait_healthy() {
  until [ "$(docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null)" = healthy ]; do sleep 0.1; done
}

# cold, one run each
start=$(seconds); (cd "$work" && docker-compose -p benchuc up -d >/dev/null 2>&1); wait_healthy benchuc-web
echo "cold to healthy, docker-compose: $(python3 -c "print(f'{$(seconds) - $start:.2f}')") s"
start=$(seconds); (cd "$work/infra" && "$INFRA" apply -auto-approve "${infra_vars[@]}" >/dev/null)
echo "cold to healthy, infra: $(python3 -c "print(f'{$(seconds) - $start:.2f}')") s"
# no-op: both stacks up, nothing to do; RUNS runs of each, alternated.
python3 "$repo/benches/timing.py" --runs "$runs" --label "no-op, infra apply" \
  --label-b "no-op, docker-compose up -d" --vs "cd $work && docker-compose -p benchuc up -d" -- \
  "cd $work/infra && $INFRA apply -auto-approve $(printf '%q ' "${infra_vars[@]}")"

# One update under load: the command's wall time and the failed requests.
update() { # tool greeting port command...
  local tool=$1 greeting=$2 port=$3; shift 3
  python3 "$repo/benches/update-load.py" "$port" "$greeting" "$work/$tool.load" &
  local client=$!
  sleep 0.5
  start=$(seconds)
  "$@" >/dev/null 2>&1
  local took; took=$(python3 -c "print(f'{$(seconds) - $start:.2f}')")
  wait "$client"
  echo "$tool $took $(cat "$work/$tool.load")" | tee -a "$work/updates"
}
: > "$work/updates"
for i in $(seq 1 "$runs"); do
  update docker-compose "round$i" "$compose_port" \
    bash -c "cd '$work' && GREETING=round$i docker-compose -p benchuc up -d"
  update infra "round$i" "$infra_port" \
    bash -c "cd '$work/infra' && '$INFRA' apply -auto-approve $(printf '%q ' "${infra_vars[@]}") -var greeting=round$i"
done
python3 - "$work/updates" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
for tool in ("docker-compose", "infra"):
    mine = [r for r in rows if r[0] == tool]
    took = [float(r[1]) for r in mine]
    failed = [int(r[3]) for r in mine]
    sent = [int(r[2]) for r in mine]
    print(f"update under load, {tool}: wall time median {statistics.median(took):.2f} s "
          f"(range {min(took):.2f}-{max(took):.2f}), failed requests median {statistics.median(failed)} "
          f"(range {min(failed)}-{max(failed)}) of {statistics.median(sent)} sent, {len(mine)} runs")
PY
