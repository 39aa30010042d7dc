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

  read       GET KEY (SMEMBERS KEY in the set workload), values as JSON text
  write      SET KEY V
  cas        a Lua script: SET KEY TO if GET KEY is FROM (a missing key is null)
  set-add    SADD KEY E
  increment  INCRBY KEY D

What an error means (the contract: fail only when it surely did not happen):
no primary known, or no connection to it -> fail (nothing was sent);
READONLY / LOADING / MASTERDOWN error replies -> fail (Redis refused it);
a timeout or a dropped connection after the command was sent -> info
(faultline itself records an unknown read as fail: a read changes nothing).

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
        # A read is SMEMBERS of a set, GET of anything else.
        self.workload = init["workload"]
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

    def invoke(self, call):
        f = call["f"]
        timeout = call.get("timeout_ms", self.op_timeout * 1000) / 1000.0
        deadline = time.monotonic() + timeout * 0.8
        try:
            answer = self.run(call, deadline)
        except Refused as e:
            return {"type": "fail", "error": str(e)}
        except Unknown as e:
            return {"type": "info", "error": str(e)}
        if answer is None:
            return {"type": "fail", "error": "unsupported call %r for workload %r" % (f, self.workload)}
        return answer

    def run(self, call, deadline):
        """The Redis command(s) of one call; the answer, or None."""
        f, key = call["f"], call.get("key")
        if f == "read" and self.workload == "set":
            members, node = self.command(deadline, "SMEMBERS", key)
            return ok(sorted(json.loads(m) for m in members), node)
        if f == "read" and self.workload == "counter":
            v, node = self.command(deadline, "GET", key)
            return ok(None if v is None else int(v), node)
        if f == "read":
            v, node = self.command(deadline, "GET", key)
            return ok(None if v is None else json.loads(v), node)
        if f == "write":
            _, node = self.command(deadline, "SET", key, json.dumps(call["value"]))
            return ok(None, node)
        if f == "cas":
            swapped, node = self.command(
                deadline, "EVAL", CAS_SCRIPT, 1, key, json.dumps(call["from"]), json.dumps(call["to"])
            )
            if swapped != 1:
                return {"type": "fail", "error": "cas-mismatch", "node": node}
            return ok(None, node)
        if f == "set-add":
            _, node = self.command(deadline, "SADD", key, json.dumps(call["element"]))
            return ok(None, node)
        if f == "increment":
            total, node = self.command(deadline, "INCRBY", key, int(call["delta"]))
            return ok(int(total), node)
        return None


def ok(value, node):
    answer = {"type": "ok", "node": node}
    if value is not None:
        answer["value"] = value
    return answer




def main():
    out = sys.stdout
    first = sys.stdin.readline()
    if not first:
        return
    init = json.loads(first)
    client = Client(init)
    out.write(json.dumps({"type": "init_ok"}) + "\n")
    out.flush()
    for line in sys.stdin:
        call = json.loads(line)
        reply = client.invoke(call)
        reply["id"] = call["id"]
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
