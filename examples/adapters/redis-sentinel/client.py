#!/usr/bin/python3
"""The faultline client for Redis with Sentinel (docs/adapters.md).

faultline starts one of these per worker. It reads one JSON object a line
on stdin (an `init`, then one `invoke` per operation) and writes one JSON
object a line on stdout (`init_ok`, then one `ok`, `fail` or `info` per
operation). Logs go to stderr, which faultline keeps in the run directory.

It finds the primary as a Sentinel-aware client does: it asks the
sentinels (its home node's first, as Jepsen's 2013 clients did, each bound
to a node) which instance is the master of `mymaster`, then sends the
command there. Operations:

  set       add  -> SADD faultline-set E         read -> SMEMBERS faultline-set
  register  write-> SET  faultline-register V    read -> GET   cas -> a Lua compare-and-set
  kv        the same as register on the key kv/<key>
  counter   add  -> INCRBY faultline-counter D   read -> GET (0 if absent)

What an error means (the contract: fail only when it surely did not happen):
no primary known, or no connection to it -> fail (nothing was sent);
READONLY / LOADING / MASTERDOWN error replies -> fail (Redis refused it);
a timeout or a dropped connection after the command was sent -> info for
writes, fail for reads (a read changes nothing).

Needs Debian's python3-redis (redis-py 4.x), so run it with /usr/bin/python3.
"""

import json
import sys
import time

import redis
from redis.connection import Connection
from redis.sentinel import MasterNotFoundError, Sentinel

MASTER = "mymaster"

CAS_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if current == false then current = 'null' end
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


class Unknown(Exception):
    """The command may or may not have taken effect."""


class Refused(Exception):
    """The command certainly did not take effect."""


class Client:
    def __init__(self, init):
        self.nodes = init["nodes"]
        self.op_timeout = init["op_timeout_ms"] / 1000.0
        home = next(i for i, n in enumerate(self.nodes) if n["name"] == init["home"])
        # The home node's sentinel first, then the others in ring order.
        order = self.nodes[home:] + self.nodes[:home]
        sentinels = [(n["ip"], n["ports"]["sentinel"]) for n in order]
        # Sentinels answer from memory: a short timeout skips a paused one.
        quick = min(0.2, self.op_timeout / 8)
        self.sentinel = Sentinel(sentinels, socket_timeout=quick, socket_connect_timeout=quick)
        self.by_addr = {(n["ip"], n["ports"]["redis"]): n["name"] for n in self.nodes}
        self.conn = None
        self.conn_addr = None

    def primary(self):
        try:
            return self.sentinel.discover_master(MASTER)
        except MasterNotFoundError as e:
            raise Refused("no-primary: %s" % e)

    def connection(self, addr, timeout):
        if self.conn is not None and self.conn_addr != addr:
            self.drop()
        if self.conn is None:
            self.conn = Connection(
                host=addr[0], port=addr[1], socket_timeout=timeout, socket_connect_timeout=timeout
            )
            self.conn_addr = addr
            try:
                self.conn.connect()
            except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
                self.drop()
                raise Refused("connect %s:%s: %s" % (addr[0], addr[1], e))
        self.conn._sock.settimeout(timeout)
        return self.conn

    def drop(self):
        if self.conn is not None:
            try:
                self.conn.disconnect()
            except Exception:
                pass
        self.conn = None
        self.conn_addr = None

    def command(self, deadline, *args):
        """Runs one command at the primary; returns (reply, node name)."""
        addr = tuple(self.primary())
        node = self.by_addr.get(addr, "%s:%s" % addr)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Refused("no time left after finding the primary")
        conn = self.connection(addr, remaining)
        try:
            conn.send_command(*args)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
            self.drop()
            raise Unknown("%s: sending: %s" % (node, e))
        try:
            reply = conn.read_response()
        except redis.ResponseError as e:
            # An error reply: Redis did not run the command.
            raise Refused("%s: %s" % (node, e))
        except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
            self.drop()
            raise Unknown("%s: %s" % (node, e))
        return reply, node

    def invoke(self, op):
        f, key, value = op["f"], op.get("key"), op.get("value")
        read_only = f == "read"
        deadline = time.monotonic() + self.op_timeout * 0.8
        try:
            result, node = self.run(f, key, value, deadline)
        except Refused as e:
            return {"type": "fail", "error": str(e)}
        except Unknown as e:
            return {"type": "fail" if read_only else "info", "error": str(e)}
        if result is FAILED:
            return {"type": "fail", "error": "cas-mismatch", "node": node}
        return {"type": "ok", "value": result, "node": node}

    def run(self, f, key, value, deadline):
        workload = self.workload
        if workload == "set":
            if f == "add":
                _, node = self.command(deadline, "SADD", "faultline-set", json.dumps(value))
                return value, node
            if f == "read":
                members, node = self.command(deadline, "SMEMBERS", "faultline-set")
                return sorted(json.loads(m) for m in members), node
        elif workload in ("register", "kv"):
            k = "faultline-register" if key is None else "kv/" + json.dumps(key)
            if f == "read":
                v, node = self.command(deadline, "GET", k)
                return (None if v is None else json.loads(v)), node
            if f == "write":
                _, node = self.command(deadline, "SET", k, json.dumps(value))
                return value, node
            if f == "cas":
                expected, new = value
                swapped, node = self.command(
                    deadline, "EVAL", CAS_SCRIPT, 1, k, json.dumps(expected), json.dumps(new)
                )
                return (value if swapped == 1 else FAILED), node
        elif workload == "counter":
            if f == "add":
                _, node = self.command(deadline, "INCRBY", "faultline-counter", int(value))
                return value, node
            if f == "read":
                v, node = self.command(deadline, "GET", "faultline-counter")
                return (0 if v is None else int(v)), node
        raise Refused("unsupported operation %r of workload %r" % (f, workload))


FAILED = object()


def main():
    out = sys.stdout
    first = sys.stdin.readline()
    if not first:
        return
    init = json.loads(first)
    client = Client(init)
    client.workload = init["workload"]
    out.write(json.dumps({"type": "init_ok"}) + "\n")
    out.flush()
    for line in sys.stdin:
        op = json.loads(line)
        reply = client.invoke(op)
        reply["id"] = op["id"]
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
