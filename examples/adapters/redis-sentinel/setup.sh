#!/bin/sh
# Writes one node's Redis and Sentinel configuration into its data
# directory (run once per node per run, before the first start; both
# daemons rewrite their files later, which is their persisted state).
# Usage: setup.sh DATA_DIR IP REDIS_PORT SENTINEL_PORT PRIMARY_IP PRIMARY_PORT QUORUM DOWN_AFTER_MS FAILOVER_TIMEOUT_MS
set -eu
dir=$1 ip=$2 port=$3 sport=$4 pip=$5 pport=$6 quorum=$7 down=$8 failover=$9
mkdir -p "$dir"
{
  echo "bind $ip"
  # Outgoing connections (replication) from this node's own address, so
  # that a packet filter between node addresses cuts them.
  echo "bind-source-addr $ip"
  echo "port $port"
  echo "protected-mode no"
  echo "daemonize no"
  echo "logfile \"\""
  echo "dir $dir"
  # In memory only, as in Jepsen's 2013 analysis.
  echo 'save ""'
  echo "appendonly no"
  echo "repl-diskless-sync-delay 0"
  if [ "$ip:$port" != "$pip:$pport" ]; then
    echo "replicaof $pip $pport"
  fi
} > "$dir/redis.conf"
{
  echo "bind $ip"
  echo "bind-source-addr $ip"
  echo "port $sport"
  echo "protected-mode no"
  echo "daemonize no"
  echo "logfile \"\""
  echo "dir $dir"
  echo "sentinel announce-ip $ip"
  echo "sentinel monitor mymaster $pip $pport $quorum"
  echo "sentinel down-after-milliseconds mymaster $down"
  echo "sentinel failover-timeout mymaster $failover"
  echo "sentinel parallel-syncs mymaster 5"
} > "$dir/sentinel.conf"
