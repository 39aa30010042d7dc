#!/bin/bash
# One PostgreSQL 15 node (Debian's postgresql-15) for
# examples/adapters/postgres.toml.
#
#   node.sh setup DATA_DIR    once per run: initdb into DATA_DIR/pgdata and
#                             create the workload's tables
#   node.sh start DATA_DIR IP PORT FSYNC
#                             becomes the postmaster (exec), in the
#                             foreground, listening on IP:PORT only
#
# PostgreSQL refuses to run as root, so as root every command runs as the
# postgres user (setpriv: it execs, so the postmaster is the node script's
# own child and in the node's process group, which faultline kills, pauses
# and resumes as one). As any other user it runs as that user. The
# postmaster is given PR_SET_PDEATHSIG (setpriv --pdeathsig KILL): the
# kernel clears a parent-death signal when the uid changes, so without it a
# harness killed outright would leave a postmaster behind; with it, the
# node script's death (faultline's own PR_SET_PDEATHSIG) takes the
# postmaster with it, and its backends exit when they see it gone.
#
# No Unix socket (unix_socket_directories is empty): clients use TCP on the
# node's own address, so nothing clashes with a system PostgreSQL, and a
# long store path cannot exceed the 107 bytes a socket path may have.
set -euo pipefail
pgbin=/usr/lib/postgresql/15/bin
what=${1:?usage: node.sh setup DATA_DIR | start DATA_DIR IP PORT FSYNC}
dir=${2:?the data directory of the node}
data="$dir/pgdata"

if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || {
    echo "no postgres user: install Debian's postgresql package (apt-get install -y postgresql)" >&2
    exit 2
  }
  as_postgres=(setpriv --reuid=postgres --regid=postgres --init-groups)
else
  as_postgres=(setpriv)
fi

case "$what" in
setup)
  if [ "$(id -u)" = 0 ]; then
    install -d -o postgres -g postgres -m 700 "$data"
  else
    install -d -m 700 "$data"
  fi
  if ! "${as_postgres[@]}" -- test -w "$data"; then
    echo "the postgres user cannot reach $data: every folder above it must let other users through (chmod o+x), or give faultline a --store under /tmp" >&2
    exit 2
  fi
  "${as_postgres[@]}" -- "$pgbin/initdb" -D "$data" -U postgres --auth=trust --no-sync \
    --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    exit 2
  }
  # Single-user mode: the tables exist before any client connects. As
  # Jepsen's PostgreSQL test: keys spread over three tables, each row a
  # key (id) with a secondary key (sk, the same, not indexed: reads by sk
  # scan the table) and its value (a comma-separated list, or a register).
  for t in 0 1 2; do
    echo "CREATE TABLE txn$t (id int PRIMARY KEY, sk int NOT NULL, val text)"
  done | "${as_postgres[@]}" -- "$pgbin/postgres" --single -D "$data" -c fsync=off -c log_min_messages=warning postgres >/dev/null
  ;;
start)
  ip=${3:?the address of the node} port=${4:?the port} fsync=${5:-on}
  # One setpriv: the parent-death signal is set after the uid changes.
  exec "${as_postgres[@]}" --pdeathsig KILL -- "$pgbin/postgres" -D "$data" \
    -c listen_addresses="$ip" -p "$port" -c unix_socket_directories= \
    -c fsync="$fsync" -c max_connections=100 -c log_min_messages=warning
  ;;
*)
  echo "node.sh: $what: use setup or start" >&2
  exit 2
  ;;
esac
