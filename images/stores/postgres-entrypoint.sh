#!/bin/sh
# The managed PostgreSQL's entrypoint (images/Dockerfile, target postgres), with the official
# image's interface: on an empty $PGDATA, create the cluster with the superuser $POSTGRES_USER
# (password $POSTGRES_PASSWORD) and the database $POSTGRES_DB; then run postgres in the
# foreground, listening on every address with password authentication from the network (any
# arguments are postgres's own, after ours).
set -eu
: "${POSTGRES_USER:?}" "${POSTGRES_DB:?}" "${POSTGRES_PASSWORD:?}" "${PGDATA:?}"

# Both names end up in SQL and in initdb's command line: plain identifiers only.
for name in "$POSTGRES_USER" "$POSTGRES_DB"; do
  case "$name" in
    "" | [!a-z_]* | *[!a-z0-9_]*) echo "postgres: not a plain identifier: $name" >&2; exit 2 ;;
  esac
done

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s\n' "$POSTGRES_PASSWORD" | initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" \
    --pwfile=/dev/stdin --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8
  printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' \
    >>"$PGDATA/pg_hba.conf"
  echo "CREATE DATABASE $POSTGRES_DB;" | postgres --single -j -D "$PGDATA" postgres >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
