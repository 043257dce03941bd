#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432, trust auth, database `test`) and Redis (127.0.0.1:6379) run,
# installing Debian's packages when they are missing. Services that already run are left alone.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
installed_now=""

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq "$@" >/dev/null
}

postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! postgres_up; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
        echo "installing PostgreSQL" >&2
        apt_install postgresql
        installed_now=yes
    fi
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    hba=/etc/postgresql/$version/main/pg_hba.conf
    if [ -n "$installed_now" ] && ! grep -q "salescast-tests" "$hba"; then
        # A fresh cluster asks for passwords on TCP; the tests use trust auth on loopback only.
        as_root sed -i '1i host all all 127.0.0.1/32 trust # salescast-tests\nhost all all ::1/128 trust # salescast-tests' "$hba"
    fi
    echo "starting PostgreSQL $version" >&2
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || as_root pg_ctlcluster "$version" main start
    for _ in $(seq 1 30); do postgres_up && break; sleep 0.5; done
    postgres_up || { echo "PostgreSQL did not start" >&2; exit 1; }
fi
if ! psql -h 127.0.0.1 -U postgres -d test -tAc 'select 1' >/dev/null 2>&1; then
    as_root su postgres -c "createdb test" 2>/dev/null || psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE test'
fi

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
if ! redis_up; then
    command -v redis-server >/dev/null 2>&1 || { echo "installing Redis" >&2; apt_install redis-server; }
    echo "starting Redis" >&2
    mkdir -p /tmp/salescast-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /tmp/salescast-redis --logfile /tmp/salescast-redis/redis.log
    for _ in $(seq 1 30); do redis_up && break; sleep 0.2; done
    redis_up || { echo "Redis did not start" >&2; exit 1; }
fi
