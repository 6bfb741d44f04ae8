#!/usr/bin/env bash
# Brings up the quickstart stack (web app, PostgreSQL, Redis, RabbitMQ on a
# private network, a database volume, health-gated start) with `infra apply` and
# with `docker-compose up -d`, from the same locally built images:
#   cold: nothing running (containers, network and volume created), one run
#         each with /usr/bin/time, the first (image builds included);
#   warm: everything already up (nothing to do), and a no-op `infra plan`:
#         RUNS runs each, alternated, by benches/timing.py (median and range);
# then cold to a healthy stack RUNS times (default 5) with the tools in turn,
# printing each run, the medians, ranges and the pairwise ratio. Both tools
# wait for the same healthchecks before starting the web app (compose:
# depends_on condition service_healthy).
#
#   benches/quickstart-vs-compose.sh            (needs Docker and docker-compose)
#
# Everything it creates is removed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/infra/target}
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
infra="$CARGO_TARGET_DIR/release/infra"
base=$(bash "$repo/scripts/base-image")
work=$(mktemp -d /tmp/infra-compose-bench.XXXXXX)
port=${BENCH_PORT:-18080}

# The same images for both: built once here.
for name in postgres redis queue web; do
  docker build -q --build-arg "BASE=$base" -t "bench/$name:latest" "$repo/examples/quickstart/images/$name" >/dev/null
done

cat > "$work/docker-compose.yml" <<YML
version: "2.4"
services:
  postgres:
    image: bench/postgres:latest
    container_name: benchc-postgres
    environment: { POSTGRES_USER: app, POSTGRES_DB: app, POSTGRES_PASSWORD: benchpassword }
    volumes: [ "db:/var/lib/postgresql/data" ]
    networks: { app: { aliases: [ postgres ] } }
    healthcheck: { test: [ "CMD", "pg_isready", "-h", "127.0.0.1", "-U", "app", "-d", "app" ], interval: 1s, retries: 60 }
  redis:
    image: bench/redis:latest
    container_name: benchc-redis
    networks: { app: { aliases: [ redis ] } }
    healthcheck: { test: [ "CMD", "redis-cli", "ping" ], interval: 1s, retries: 30 }
  queue:
    image: bench/queue:latest
    container_name: benchc-queue
    networks: { app: { aliases: [ queue ] } }
    healthcheck: { test: [ "CMD", "rabbitmq-diagnostics", "-q", "ping" ], interval: 2s, timeout: 10s, retries: 60 }
  web:
    image: bench/web:latest
    container_name: benchc-web
    environment:
      GREETING: hello
      DATABASE_URL: postgresql://app:benchpassword@postgres:5432/app
      REDIS_HOST: redis
      AMQP_URL: amqp://guest:guest@queue:5672/%2F
    ports: [ "127.0.0.1:$port:8080" ]
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
infra_vars=(-var "base_image=$base" -var stack=benchi -var "web_port=$((port + 1))" -var images=registry
            -var 'registry_images={ postgres = "bench/postgres:latest", redis = "bench/redis:latest", queue = "bench/queue:latest" }')
cleanup() {
  [ -d "$work" ] || return 0
  (cd "$work" && docker-compose -p benchc down -v >/dev/null 2>&1) || true
  (cd "$work/infra" && "$infra" destroy -auto-approve "${infra_vars[@]}" >/dev/null 2>&1) || true
  rm -rf "$work"
}
trap cleanup EXIT

timed() { local label=$1; shift; /usr/bin/time -f "$label: %e s" "$@" >/dev/null 2>"$work/time.log" || { cat "$work/time.log"; exit 1; }; tail -n1 "$work/time.log"; }

# compose 1.29 returns before the last service is healthy; infra waits for it.
# The second cold figure adds that wait, so both end at "the app answers".
wait_web_healthy() {
  docker-compose -p benchc up -d
  until [ "$(docker inspect -f '{{.State.Health.Status}}' benchc-web)" = healthy ]; do sleep 0.2; done
}
export -f wait_web_healthy

runs=${RUNS:-5}
cd "$work"
timed "docker-compose up -d (cold)" docker-compose -p benchc up -d
cd "$work/infra"
timed "infra apply (cold)" "$infra" apply -auto-approve "${infra_vars[@]}"
# Warm: both stacks up (on ports of their own), nothing to do; RUNS runs each,
# alternated, by benches/timing.py (median and range, the ratio pair by pair).
vars=$(printf '%q ' "${infra_vars[@]}")
python3 "$repo/benches/timing.py" --runs "$runs" --label "infra apply (warm)" \
  --label-b "docker-compose up -d (warm)" --vs "cd $work && docker-compose -p benchc up -d" -- \
  "cd $work/infra && $infra apply -auto-approve $vars"
python3 "$repo/benches/timing.py" --runs "$runs" --label "infra plan (no-op)" -- "cd $work/infra && $infra plan $vars"
(cd "$work" && docker-compose -p benchc down -v >/dev/null 2>&1)
"$infra" destroy -auto-approve "${infra_vars[@]}" >/dev/null

# Cold to a healthy stack, both tools in turn RUNS times (default 5), so a slow
# moment of the machine hits both; the medians, ranges and the pairwise ratio
# printed at the end are the figures to quote.
: > "$work/compose.times"; : > "$work/infra.times"
for i in $(seq 1 "$runs"); do
  (cd "$work" && timed "run $i: docker-compose up -d, then wait for web healthy (cold)" bash -c wait_web_healthy) | tee -a "$work/compose.times"
  (cd "$work" && docker-compose -p benchc down -v >/dev/null 2>&1)
  (cd "$work/infra" && timed "run $i: infra apply (cold)" "$infra" apply -auto-approve "${infra_vars[@]}") | tee -a "$work/infra.times"
  (cd "$work/infra" && "$infra" destroy -auto-approve "${infra_vars[@]}" >/dev/null)
done
# Medians, ranges, and infra / docker-compose pair by pair (run i of each).
python3 - "$work/compose.times" "$work/infra.times" <<'PY'
import statistics, sys
def seconds(path):
    return [float(line.split()[-2]) for line in open(path) if line.strip()]
compose, infra = seconds(sys.argv[1]), seconds(sys.argv[2])
for name, values in (("docker-compose", compose), ("infra", infra)):
    print(f"cold to healthy, {name}: median {statistics.median(values):.2f} s (range {min(values):.2f}-{max(values):.2f} s, {len(values)} runs)")
ratios = [i / c for c, i in zip(compose, infra)]
print(f"infra / docker-compose: median {statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f}, {len(ratios)} pairs)")
PY
docker rmi bench/postgres:latest bench/redis:latest bench/queue:latest bench/web:latest >/dev/null
rm -rf "$work"
