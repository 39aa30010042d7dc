#!/usr/bin/env bash
# Lab CI (called by .ci/run, as root): the SSH failure-path and remote
# operation tests against real sshd, then a 5-host lab on this machine: a
# remote test with partition, kill, pause, clock and loss faults that must
# end valid, a planted-bug test that must end invalid, every node's log in
# the store, lab down, and a check that no namespace, link, rule or process
# of the lab is left. Prints the lab's timings. Traffic stays on the lab's
# own bridge (10.77.0.0/24, hosts without a default route) and loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export DEBIAN_FRONTEND=noninteractive

passed=0
failed=0
ok() { echo "lab: ok: $*"; passed=$((passed + 1)); }
bad() { echo "lab: FAILED: $*"; failed=$((failed + 1)); }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

echo "== lab: install what it needs"
missing=()
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
[ -x /usr/lib/openssh/sftp-server ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
command -v iptables >/dev/null || missing+=(iptables)
command -v ip >/dev/null || missing+=(iproute2)
command -v ps >/dev/null || missing+=(procps)
command -v unshare >/dev/null || missing+=(util-linux)
# lab_etcd: the hosts run this machine's etcd (they share its filesystem).
command -v etcd >/dev/null || missing+=(etcd-server)
# lab_adapter: the adapters' clients run here (Redis's with python3-redis);
# the hosts run this machine's redis-server and redis-sentinel.
[ -x /usr/bin/python3 ] || missing+=(python3)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-sentinel >/dev/null || missing+=(redis-sentinel)
command -v redis-cli >/dev/null || missing+=(redis-tools)
/usr/bin/python3 -c 'import redis' 2>/dev/null || missing+=(python3-redis)
ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || missing+=(libfaketime faketime)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "== lab: build"
# --workspace, as .ci/run's `cargo test --workspace --release` (so nothing
# is rebuilt there): `-p faultline` unifies the dependencies' features
# differently and rebuilt every crate, the vendored OpenSSL included.
cargo test --release --workspace --no-run
TARGET="${CARGO_TARGET_DIR:-target}"
case "$TARGET" in /*) ;; *) TARGET="$(pwd)/$TARGET";; esac
BIN="$TARGET/release/faultline"
[ -x "$BIN" ] || { echo "no faultline binary at $BIN"; exit 1; }
# The executable deployed to hosts needs no OpenSSL of theirs (Debian 11,
# Ubuntu 20.04 have no libssl.so.3): it is linked in.
if ldd "$BIN" | grep -E 'libssl|libcrypto'; then
  bad "the deployed executable links the system's OpenSSL (above)"
else
  ok "the deployed executable needs no libssl or libcrypto (ldd)"
fi

LAB="$(mktemp -d /tmp/faultline-ci-lab.XXXXXX)"
STORE="$(mktemp -d /tmp/faultline-ci-store.XXXXXX)"
cleanup() { "$BIN" lab down --dir "$LAB" >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "== lab: failure paths and remote operations against real sshd"
if FAULTLINE_LAB_TESTS=1 cargo test --release --workspace --test ssh_failures --test ssh_config_lab --test lab_remote --test lab_test_remote --test test_shards_lab --test lab_etcd --test lab_adapter --test lab_killed --test lab_auth --test lab_tls -- --ignored --test-threads=1; then
  ok "gated lab tests (ssh_failures, ssh_config_lab, lab_remote, lab_test_remote, test_shards_lab, lab_etcd, lab_adapter, lab_killed, lab_auth, lab_tls)"
else
  bad "gated lab tests (ssh_failures, ssh_config_lab, lab_remote, lab_test_remote, test_shards_lab, lab_etcd, lab_adapter, lab_killed, lab_auth, lab_tls)"
fi

echo "== lab: 5 hosts"
t=$(date +%s%N)
"$BIN" lab up --hosts 5 --dir "$LAB"
up_ms=$(ms "$t")
"$BIN" lab status --dir "$LAB" && ok "lab up: 5 hosts healthy" || bad "lab status after up"
"$BIN" lab ping --lab "$LAB" --count 20 || bad "lab ping"
t=$(date +%s%N)
"$BIN" lab deploy --lab "$LAB"
deploy_ms=$(ms "$t")
t=$(date +%s%N)
"$BIN" lab deploy --lab "$LAB" | tee "$STORE/redeploy.txt"
redeploy_ms=$(ms "$t")
if [ "$(grep -c 'already there' "$STORE/redeploy.txt")" = 5 ]; then ok "redeploy skipped all 5 hosts by checksum"; else bad "redeploy did not skip"; fi

if "$BIN" test --help | grep -q -- '--lab'; then
  echo "== lab: remote test with partition, kill, pause, clock, loss (must be valid)"
  t=$(date +%s%N)
  set +e
  "$BIN" test --lab "$LAB" --store "$STORE" --name remote-faults --workload register \
    --nemesis partition,kill,pause,clock,loss --nemesis-interval 4s --time-limit 30s --seed 7
  rc=$?
  set -e
  remote_ms=$(ms "$t")
  [ "$rc" = 0 ] && ok "remote fault test valid" || bad "remote fault test exited $rc (want 0)"
  logs=0
  for n in 1 2 3 4 5; do
    f="$(ls -d "$STORE"/remote-faults/2*/ | head -1)nodes/n$n.log"
    if [ -s "$f" ]; then logs=$((logs + 1)); else echo "missing or empty: $f"; fi
  done
  [ "$logs" = 5 ] && ok "all 5 node logs reached the store" || bad "only $logs of 5 node logs in the store"

  echo "== lab: remote planted bug (must be invalid)"
  set +e
  "$BIN" test --lab "$LAB" --store "$STORE" --name remote-bug --workload register \
    --bug stale-read --nemesis partition --nemesis-interval 3s --time-limit 30s --seed 7
  rc=$?
  set -e
  [ "$rc" = 1 ] && ok "remote planted bug found (invalid)" || bad "remote planted-bug test exited $rc (want 1)"
  logs=$(ls "$STORE"/remote-bug/2*/nodes/n*.log 2>/dev/null | wc -l)
  [ "$logs" = 5 ] && ok "planted-bug run: all 5 node logs in the store" || bad "planted-bug run: $logs of 5 node logs"
else
  bad "faultline test has no remote mode (--lab) yet"
fi

echo "== lab: down"
t=$(date +%s%N)
"$BIN" lab down --dir "$LAB"
down_ms=$(ms "$t")
trap - EXIT

left=""
ip netns list | grep -q 'fl-lab-' && left="$left namespaces"
ip -o link show | grep -q 'fl-lab-' && left="$left links"
iptables -w -S FORWARD 2>/dev/null | grep -q 'faultline-lab' && left="$left forward-rule"
iptables -w -S 2>/dev/null | grep -q 'FL-PART\|FL-LOSS' && left="$left fault-chains-in-root-namespace"
ps -eo args | grep -v grep | grep -q -- "$LAB" && left="$left processes"
[ -z "$left" ] && ok "nothing of the lab is left" || bad "left after lab down:$left"

echo "lab timings: up 5 hosts ${up_ms} ms; deploy to 5 hosts ${deploy_ms} ms (again, skipped by checksum: ${redeploy_ms} ms); down ${down_ms} ms${remote_ms:+; remote fault test ${remote_ms} ms}"
rm -rf "$LAB"
# Keep the runs for inspection only when something failed.
if [ "$failed" = 0 ]; then rm -rf "$STORE"; else echo "lab: runs kept in $STORE"; fi
echo "lab: $passed passed, $failed failed"
[ "$failed" = 0 ]
