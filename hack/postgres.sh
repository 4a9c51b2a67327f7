#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for tests.
#
#   hack/postgres.sh start <dir> <port>   initdb + start; creates database tc_test;
#                                          prints the URL on stdout
#   hack/postgres.sh stop <dir>           stop the cluster (fast shutdown)
#
# Runs as root (the server runs as the postgres user) or as the postgres user.
# Installs nothing: PostgreSQL 15 (Debian package "postgresql") must be present.
# Use with: export TC_TEST_POSTGRES_URL=$(hack/postgres.sh start "$D" 55432)
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

usage() {
	echo "usage: $0 start <dir> <port> | stop <dir>" >&2
	exit 2
}

# as_postgres runs a command as the postgres user (directly if we already are).
as_postgres() {
	if [ "$(id -un)" = postgres ]; then
		"$@"
	elif command -v runuser >/dev/null 2>&1; then
		runuser -u postgres -- "$@"
	else
		su postgres -s /bin/bash -c "$(printf '%q ' "$@")"
	fi
}

start() {
	local dir=$1 port=$2
	[ -x "$PGBIN/initdb" ] || { echo "postgres.sh: $PGBIN/initdb not found (apt-get install postgresql)" >&2; exit 1; }
	case $port in '' | *[!0-9]*) echo "postgres.sh: bad port '$port'" >&2; exit 2 ;; esac
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	# The postgres user must be able to reach the directory: mktemp -d makes
	# 0700 directories, so open up (755) such parents that we own; fail clearly
	# on anything else rather than loosening permissions we know nothing about.
	if [ "$(id -un)" != postgres ]; then
		# Walk from / down to $dir so that each check sees reachable parents.
		local p="" part
		local IFS=/
		for part in ${dir#/}; do
			p=$p/$part
			if ! as_postgres test -x "$p"; then
				if [ -O "$p" ] && [ "$(stat -c %a "$p")" = 700 ]; then
					chmod 755 "$p"
				else
					echo "postgres.sh: the postgres user cannot reach $p" >&2
					exit 1
				fi
			fi
		done
		unset IFS
		chown postgres: "$dir"
	fi
	if [ ! -f "$dir/PG_VERSION" ]; then
		local out
		out=$(as_postgres "$PGBIN/initdb" -D "$dir" -U postgres -A trust --no-sync 2>&1) ||
			{ echo "$out" >&2; exit 1; }
	fi
	as_postgres "$PGBIN/pg_ctl" -D "$dir" -l "$dir/log" -w \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off" start >/dev/null ||
		{ cat "$dir/log" >&2; exit 1; }
	if ! as_postgres "$PGBIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAq \
		-c "SELECT 1 FROM pg_database WHERE datname = 'tc_test'" | grep -q 1; then
		as_postgres "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U postgres tc_test
	fi
	echo "postgres://postgres@127.0.0.1:$port/tc_test?sslmode=disable"
}

stop() {
	local dir=$1
	dir=$(cd "$dir" && pwd)
	as_postgres "$PGBIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
}

case ${1:-} in
start) [ $# -eq 3 ] || usage; start "$2" "$3" ;;
stop) [ $# -eq 2 ] || usage; stop "$2" ;;
*) usage ;;
esac
