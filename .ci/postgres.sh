#!/usr/bin/env bash
# CI: PostgreSQL 15's isolation levels through `faultline test` and the
# adapter file examples/adapters/postgres.toml (one node; list-append as
# Jepsen's PostgreSQL test makes it; kill and pause faults). What
# PostgreSQL's documentation and Jepsen's analysis say each level allows,
# asserted from each run's results.json in the store:
#   serializable     valid
#   repeatable-read  invalid with G2-item, and nothing weaker (no G0, G1*,
#                    G-single, G-nonadjacent, lost update, internal)
#   read-committed   invalid with G-single or G2-item, no G0 and no G1*
#                    (PostgreSQL never exposes uncommitted data)
# A weak level's anomaly may not show in one short run: up to $TRIES seeds
# each, every one of which must stay within what the level allows.
# Then: a harness killed outright (SIGKILL) mid-run leaves no PostgreSQL
# process, and `faultline heal` finds the run's ledger.
# Runs as root; PostgreSQL itself runs as the postgres user. SEED (the
# first run's seed less one), TRIES, SECONDS_PER_RUN and FAULTLINE (a
# built binary: then nothing is built) may be set.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends postgresql-15 python3-psycopg2 >/dev/null
# The binary `cargo test --workspace --release` builds for the integration
# tests (target/release/faultline): after .ci/run's test stage nothing is
# rebuilt (`cargo build -p faultline`, and even `cargo build --workspace`,
# would build the crates again with another feature set).
if [ -z "${FAULTLINE:-}" ]; then
  cargo test --workspace --release --no-run --test adapter_cli
fi
faultline="${FAULTLINE:-$PWD/target/release/faultline}"
SECONDS_PER_RUN=${SECONDS_PER_RUN:-30s}
TRIES=${TRIES:-3}
work="$(mktemp -d /tmp/faultline-pg-ci.XXXXXX)"
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

# Live processes (zombies aside) working in folder $1: PostgreSQL's every
# process has its data folder as working directory (a backend's command
# line is only its ps title), and so do the node script and the clients.
live_in() {
  local p cwd state
  for p in /proc/[0-9]*; do
    cwd="$(readlink "$p/cwd" 2>/dev/null)" || continue
    case "$cwd" in
    "$1"/*)
      state="$(sed 's/.*) //' "$p/stat" 2>/dev/null | cut -d' ' -f1)"
      [ "$state" = Z ] || echo "${p#/proc/} $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"
      ;;
    esac
  done
}

# Runs one level with one seed; prints a line; exits 0 (as expected), 1
# (not as expected) or 3 (allowed, but the anomaly it looks for did not
# show: try another seed).
run_level() {
  local level=$1 seed=$2 store="$work/$1-$2"
  set +e
  "$faultline" test --system examples/adapters/postgres.toml --node-count 1 \
    --workload list-append --isolation "$level" --nemesis kill,pause --nemesis-interval 10s \
    --time-limit "$SECONDS_PER_RUN" --concurrency 10 --rate 200 --seed "$seed" \
    --store "$store" >"$store.out" 2>"$store.err"
  local code=$?
  set -e
  if [ "$code" -ne 0 ] && [ "$code" -ne 1 ]; then
    echo "postgres: $level seed $seed: faultline test exited $code" >&2
    tail -30 "$store.err" >&2
    return 1
  fi
  local left
  left="$(live_in "$store")"
  if [ -n "$left" ]; then
    echo "postgres: $level seed $seed: processes still running in the store after the run:" >&2
    echo "$left" >&2
    return 1
  fi
  /usr/bin/python3 - "$level" "$seed" "$code" "$store" <<'EOF'
import json, os, sys
level, seed, code, store = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
path = os.path.realpath(f"{store}/latest/results.json")
if not os.path.exists(path):
    sys.exit(f"postgres: {level} seed {seed}: no results.json in {store}/latest")
results = json.load(open(path))
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
found = set(find(results, "anomaly_types") or [])
plain = {a.split("-realtime")[0].split("-process")[0] for a in found}
# G0 and G1 (what read committed proscribes), and what no level allows.
weak = {"G0", "G1a", "G1b", "G1c", "dirty-update", "garbage-read", "duplicate-elements",
        "incompatible-order"}
verdict = results.get("verdict")
if level == "serializable":
    allowed, wanted = code == 0 and verdict == "valid", True
    want = "valid"
elif level == "repeatable-read":
    allowed = not (plain & (weak | {"G-single", "G-nonadjacent", "internal", "lost-update"}))
    wanted = code == 1 and "G2-item" in plain
    want = "invalid with G2-item and nothing weaker"
else:
    allowed = not (plain & weak)
    wanted = code == 1 and bool(plain & {"G-single", "G2-item"})
    want = "invalid with G-single or G2-item, no G0 or G1"
ok = allowed and wanted
status = "as expected" if ok else ("NOT as expected" if not allowed else "anomaly not seen")
total = results.get("stats", {}).get("total", {})
counts = f"{total.get('ok', '?')} ok / {total.get('fail', '?')} fail / {total.get('info', '?')} info txns"
print(f"{level:16} seed {seed}  exit {code} ({verdict})  {counts}  anomalies: "
      f"{', '.join(sorted(found)) or 'none'}  -> {status} ({want})  {os.path.dirname(path)}")
sys.exit(0 if ok else (3 if allowed else 1))
EOF
}

failures=0
seed=${SEED:-20261206}
for level in serializable repeatable-read read-committed; do
  tries=$TRIES
  [ "$level" = serializable ] && tries=2
  seen=no
  for i in $(seq 1 "$tries"); do
    set +e
    run_level "$level" $((seed + i))
    code=$?
    set -e
    if [ "$code" -eq 1 ]; then
      failures=$((failures + 1))
      seen=failed
      break
    fi
    if [ "$level" = serializable ]; then
      seen=yes
      continue
    fi
    if [ "$code" -eq 0 ]; then
      seen=yes
      break
    fi
  done
  if [ "$seen" = no ]; then
    echo "postgres: $level: the anomaly it allows did not show in $tries runs" >&2
    failures=$((failures + 1))
  fi
done

# A harness killed outright leaves no PostgreSQL behind: the node script
# dies with it (PR_SET_PDEATHSIG), the postmaster with the script (setpriv
# --pdeathsig), and its backends when they see the postmaster gone.
store="$work/killed"
"$faultline" test --system examples/adapters/postgres.toml --node-count 1 --workload list-append \
  --nemesis none --time-limit 60s --concurrency 4 --store "$store" >"$store.out" 2>"$store.err" &
harness=$!
for _ in $(seq 1 300); do
  [[ "$(live_in "$store")" == *"postgres -D"* ]] && break
  sleep 0.1
done
# (Not `live_in | grep -q`: with pipefail, grep leaving early fails the pipe.)
if [[ "$(live_in "$store")" != *"postgres -D"* ]]; then
  echo "postgres: killed run: PostgreSQL never started" >&2
  cat "$store.err" >&2
  failures=$((failures + 1))
else
  sleep 3
  kill -KILL "$harness"
  wait "$harness" 2>/dev/null || true
  for _ in $(seq 1 100); do
    [ -z "$(live_in "$store")" ] && break
    sleep 0.1
  done
  left="$(live_in "$store")"
  if [ -n "$left" ]; then
    echo "postgres: killed run: processes outlived the harness:" >&2
    echo "$left" >&2
    failures=$((failures + 1))
  else
    echo "killed run       no process of the run left after SIGKILL to the harness"
  fi
  "$faultline" heal --store "$store" || failures=$((failures + 1))
fi
exit $failures
