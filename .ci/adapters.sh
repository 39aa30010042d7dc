#!/usr/bin/env bash
# Adapter tests that need root and real systems: Redis with Sentinel, from
# Debian, through examples/adapters/redis-sentinel.toml, must end valid
# without faults and lose acknowledged adds under partitions
# (harness/tests/adapter_redis.rs); faultline's own node through
# examples/adapters/faultline-node.toml must give the planted-bug matrix's
# verdicts (harness/tests/adapter_bugs.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)
apt-get install -y -qq --no-install-recommends \
  redis-server redis-sentinel redis-tools python3 python3-redis iptables >/dev/null
# The packages may start their own services (on 6379/26379 of 127.0.0.1);
# the tests' nodes use their own addresses and free ports, so those are
# left alone.
echo "adapters: packages installed in $(( $(date +%s) - start )) s"
# --workspace, as .ci/run's `cargo test --workspace --release`: the same
# feature set, so nothing is rebuilt (-p faultline would rebuild the crates).
FAULTLINE_ADAPTER_TESTS=1 cargo test --workspace --release --test adapter_redis --test adapter_bugs -- \
  --ignored --test-threads 1 --nocapture
echo "adapters: done in $(( $(date +%s) - start )) s"
