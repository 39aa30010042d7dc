#!/usr/bin/env bash
# etcd CI (called by .ci/run, as root): the gated end-to-end tests of etcd
# built in (harness/tests/test_etcd.rs) against Debian's etcd-server:
# register, kv, set and counter valid under partition, kill and pause, and
# list-append and rw-register strict serializable under the same faults;
# Jepsen's lock finding reproduced (mutex invalid, fencing valid) and lost
# updates under the lock; the clock fault recorded as unsupported; an etcd
# that cannot start, or never listens, a harness error naming the member;
# nothing left behind. Traffic stays on loopback. Prints its duration.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)

if ! command -v etcd >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
fi
# sed reads all of it: head would close the pipe early, and etcd, writing on,
# dies of SIGPIPE (exit 141 under pipefail; 1 run in 6 here).
etcd --version | sed -n 1p

# --workspace, as .ci/run's cargo test (so nothing is rebuilt). The tests
# run side by side (each run has its own ports, member uids and iptables
# chain): 3 at a time keeps the stage to a few minutes on 2 cores.
FAULTLINE_ETCD_TESTS=1 cargo test --release --workspace --test test_etcd -- --ignored --test-threads=3
# A SIGKILLed `faultline test --system etcd`: members (own process group,
# own uid) die with it, and `faultline heal` removes its chain.
FAULTLINE_ETCD_TESTS=1 cargo test --release --workspace --test test_killed -- --ignored

echo "etcd: done in $(( $(date +%s) - start )) s"
