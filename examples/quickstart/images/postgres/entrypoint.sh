#!/bin/sh
# Initialises the data directory once (owner `app`, database `app`; `app` may
# create databases, which backup verification restores into), then runs
# PostgreSQL in the foreground, listening on the container network.
set -eu
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres:postgres "$PGDATA" /run/postgresql
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
  printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pwfile
  chown postgres /tmp/pwfile
  su postgres -c "initdb -D '$PGDATA' --username=postgres --pwfile=/tmp/pwfile --auth-host=scram-sha-256 --auth-local=trust" >/dev/null
  rm -f /tmp/pwfile
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  su postgres -c "pg_ctl -D '$PGDATA' -o '-c listen_addresses=' -w start" >/dev/null
  su postgres -c "psql -v ON_ERROR_STOP=1 -q" <<SQL
CREATE ROLE app LOGIN CREATEDB PASSWORD '$(printf '%s' "$POSTGRES_PASSWORD" | sed "s/'/''/g")';
CREATE DATABASE app OWNER app;
SQL
  su postgres -c "pg_ctl -D '$PGDATA' -m fast -w stop" >/dev/null
fi
exec su postgres -c "exec postgres -D '$PGDATA' -c listen_addresses='*'"
