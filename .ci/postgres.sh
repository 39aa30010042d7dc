#!/usr/bin/env bash
# CI: PostgreSQL 15's isolation levels checked by faultline's list-append
# checker (examples/postgres/run.sh: serializable valid; repeatable read
# G2-item and nothing weaker; read committed G-single or G2-item, no G0/G1).
# Runs as root; PostgreSQL itself runs as the postgres user.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends postgresql-15 python3-psycopg2 >/dev/null
cargo build --release -p faultline --bin faultline
bash examples/postgres/run.sh "$PWD/target/release/faultline" 10
