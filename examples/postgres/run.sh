#!/usr/bin/env bash
# PostgreSQL's isolation levels, checked: starts a throw-away PostgreSQL 15
# (as the postgres user: it refuses root) on a free port in 23000-23999,
# runs list_append.py at each level, and checks each history with
# `faultline check --model list-append`. Prints one line per level and
# fails unless each level shows what PostgreSQL's documentation and
# Jepsen's analysis say it allows:
#   serializable     valid at strict-serializable
#   repeatable-read  invalid, G2-item, nothing weaker (no G0, G1*, G-single)
#   read-committed   invalid, G-single or G2-item, no G0 and no G1*
#                    (internal and lost-update are allowed: each statement
#                    reads a fresh snapshot)
#
#   examples/postgres/run.sh [FAULTLINE_BINARY] [SECONDS]
# Needs: root (to become postgres), postgresql-15, python3-psycopg2.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
faultline="${1:-$here/../../target/release/faultline}"
seconds="${2:-10}"
pgbin=/usr/lib/postgresql/15/bin
[ -x "$pgbin/postgres" ] || { echo "no PostgreSQL 15 at $pgbin (apt-get install postgresql-15)" >&2; exit 2; }
[ -x "$faultline" ] || { echo "no faultline binary at $faultline" >&2; exit 2; }

work="$(mktemp -d /tmp/faultline-pg.XXXXXX)"
chown postgres: "$work"
started=""
cleanup() {
  if [ -n "$started" ]; then
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/data" stop -m immediate -w >/dev/null 2>&1 || true
    # pg_ctl could not stop it: the postmaster's pid is the pidfile's first line.
    if [ -f "$work/data/postmaster.pid" ]; then
      kill -KILL "$(head -1 "$work/data/postmaster.pid")" 2>/dev/null || true
    fi
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

port="$(/usr/bin/python3 - <<'EOF'
import socket
for p in range(23000, 24000):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
EOF
)"
[ -n "$port" ] || { echo "no free port in 23000-23999" >&2; exit 2; }

runuser -u postgres -- "$pgbin/initdb" -D "$work/data" -U postgres --auth=trust >"$work/initdb.log" 2>&1 \
  || { cat "$work/initdb.log" >&2; exit 2; }
started=yes
runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/data" -l "$work/postgres.log" -w -t 60 start \
  -o "-p $port -k $work -c listen_addresses=127.0.0.1 -c max_connections=40 -c fsync=off" >/dev/null \
  || { cat "$work/postgres.log" >&2; exit 2; }
pg_pid="$(head -1 "$work/data/postmaster.pid")"
echo "PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (pid $pg_pid)"

failures=0
for level in serializable repeatable-read read-committed; do
  hist="$work/$level.jsonl"
  /usr/bin/python3 "$here/list_append.py" --port "$port" --isolation "$level" \
    --seconds "$seconds" --out "$hist" 2>"$work/client.log" \
    || { cat "$work/client.log" >&2; exit 2; }
  set +e
  "$faultline" check --model list-append --json "$hist" >"$work/$level.json" 2>"$work/check.log"
  code=$?
  set -e
  /usr/bin/python3 - "$level" "$code" "$work/$level.json" <<'EOF' || failures=$((failures + 1))
import json, sys
level, code, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
report = json.load(open(path))
def find(v, name):
    if isinstance(v, dict):
        if name in v:
            return v[name]
        for x in v.values():
            r = find(x, name)
            if r is not None:
                return r
    if isinstance(v, list):
        for x in v:
            r = find(x, name)
            if r is not None:
                return r
    return None
stats = find(report, "stats") or {}
found = set(find(report, "anomaly_types") or [])
plain = {a.split("-realtime")[0].split("-process")[0] for a in found}
# G0 and G1 (what read committed proscribes), and what no level allows
# (values nobody wrote, duplicates, orders no serial history has).
weak = {"G0", "G1a", "G1b", "G1c", "dirty-update", "garbage-read", "duplicate-elements",
        "incompatible-order"}
if level == "serializable":
    ok = code == 0
    want = "valid at strict-serializable"
elif level == "repeatable-read":
    ok = code == 1 and "G2-item" in plain and not (plain & (weak | {"G-single", "G-nonadjacent", "internal", "lost-update"}))
    want = "invalid with G2-item and nothing weaker"
else:
    ok = code == 1 and bool(plain & {"G-single", "G2-item"}) and not (plain & weak)
    want = "invalid with G-single or G2-item, no G0 or G1"
print(f"{level:16} exit {code}  {stats.get('ok', '?')} ok / {stats.get('fail', '?')} fail / "
      f"{stats.get('info', '?')} info txns  anomalies: {', '.join(sorted(found)) or 'none'}  "
      f"-> {'as expected' if ok else 'NOT as expected'} ({want})")
sys.exit(0 if ok else 1)
EOF
done
exit $failures
