#!/usr/bin/python3
"""The faultline client for faultline's own node, through the adapter path.

Standard library only: it speaks the node's wire protocol (JSON Lines over
TCP, docs/protocol.md) itself and links nothing of the harness, so the
planted-bug matrix run through examples/adapters/faultline-node.toml proves
that the adapter protocol (docs/adapters.md) carries everything a workload
needs.

It behaves as the harness's built-in client does: every operation starts at
the worker's home node, follows `not-leader` and `moved` redirects (definite,
so safe to retry) until its deadline, and moves on to the next node when a
connection is refused. Once a request is written, no reply means unknown.

  fail  the node refused it definitely, or no node took the request;
  info  sent but no definite answer (a read answers fail: it changes nothing).
"""

import json
import socket
import sys
import time

# The keys the built-in workloads use on the wire (workloads/src/*.rs).
KEYS = {"register": "register", "set": "set", "counter": "counter"}
LOCK = "lock"


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


class Conn:
    def __init__(self, addr, timeout):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def still_open(self):
        """False when the node closed the connection since the last reply
        (it died): then the next request counts as never sent."""
        self.sock.setblocking(False)
        try:
            return not self.sock.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            self.sock.setblocking(True)

    def send(self, line, timeout):
        self.sock.settimeout(timeout)
        self.sock.sendall(line)

    def read_line(self, timeout):
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class NotSent(Exception):
    pass


class Unknown(Exception):
    pass


class Client:
    def __init__(self, init):
        self.nodes = init["nodes"]
        self.addrs = [(n["ip"], n["ports"]["client"]) for n in self.nodes]
        self.home = next(i for i, n in enumerate(self.nodes) if n["name"] == init["home"])
        self.workload = init["workload"]
        self.op_timeout = init["op_timeout_ms"] / 1000.0
        self.conns = {}
        self.next_id = 1

    def index_of(self, addr):
        if not isinstance(addr, str) or ":" not in addr:
            return None
        host, _, port = addr.rpartition(":")
        try:
            return self.addrs.index((host, int(port)))
        except (ValueError, IndexError):
            return None

    def attempt(self, i, request, deadline):
        """One try at node i: the reply, or NotSent / Unknown."""
        conn = self.conns.get(i)
        if conn is not None and not conn.still_open():
            conn.close()
            del self.conns[i]
            conn = None
        if conn is None:
            try:
                conn = Conn(self.addrs[i], max(0.01, min(0.5, deadline - time.monotonic())))
            except OSError as e:
                raise NotSent("connect: %s" % e)
            self.conns[i] = conn
        rid = self.next_id
        self.next_id += 1
        line = (json.dumps(dict(request, id=rid)) + "\n").encode()
        try:
            conn.send(line, max(0.01, deadline - time.monotonic()))
            while True:
                reply = json.loads(conn.read_line(max(0.01, deadline - time.monotonic())))
                if reply.get("id") in (rid, None):
                    return reply
        except (OSError, ValueError) as e:
            conn.close()
            self.conns.pop(i, None)
            raise Unknown("timeout" if isinstance(e, socket.timeout) else str(e))

    def call(self, request, deadline):
        """Follows redirects; returns (reply, node) or raises."""
        n = len(self.nodes)
        target = self.home
        attempts = 0
        last = "no attempt"
        while time.monotonic() < deadline:
            attempts += 1
            name = self.nodes[target]["name"]
            try:
                reply = self.attempt(target, request, deadline)
            except NotSent as e:
                last = str(e)
                target = (target + 1) % n
                time.sleep(0.05 if attempts % n == 0 else 0.005)
                continue
            except Unknown as e:
                raise Unknown("%s: %s" % (name, e))
            if not reply.get("ok") and reply.get("error") in ("not-leader", "moved"):
                last = reply["error"]
                j = self.index_of(reply.get("leader"))
                if j is not None and j != target:
                    target = j
                else:
                    target = (target + 1) % n
                    time.sleep(0.05 if attempts % n == 0 else 0.005)
                continue
            return reply, name
        raise NotSent(last)

    def request(self, f, key, value):
        """The wire request of a workload's operation (docs/history-format.md)."""
        w = self.workload
        if w == "lock":
            v = value or {}
            if f == "acquire":
                return {"op": "acquire", "lock": key, "owner": v["owner"], "ttl_ms": v["ttl_ms"]}
            if f == "renew":
                return {"op": "renew", "lock": key, "owner": v["owner"], "token": v["token"],
                        "ttl_ms": v["ttl_ms"]}
            if f == "release":
                return {"op": "release", "lock": key, "owner": v["owner"], "token": v["token"]}
            if f == "fenced-write":
                return {"op": "fenced_write", "key": key, "value": v["value"], "token": v["token"]}
            if f == "read":
                return {"op": "read", "key": key}
        wire_key = key if w == "kv" else KEYS.get(w)
        if wire_key is not None:
            if f == "read":
                return {"op": "read", "key": wire_key}
            if w in ("register", "kv"):
                if f == "write":
                    return {"op": "write", "key": wire_key, "value": value}
                if f == "cas":
                    return {"op": "cas", "key": wire_key, "from": value[0], "to": value[1]}
            if w == "set" and f == "add":
                return {"op": "append", "key": wire_key, "value": value}
            if w == "counter" and f == "add":
                return {"op": "add", "key": wire_key, "delta": value}
        return None

    def ok_value(self, f, value, reply):
        if f == "read":
            v = reply.get("value")
            if self.workload == "set" and v is None:
                return []
            if self.workload == "counter" and v is None:
                return 0
            return v
        if f == "acquire":
            return dict(value, token=reply.get("token"))
        return value

    def invoke(self, op):
        f, key, value = op["f"], op.get("key"), op.get("value")
        request = self.request(f, key, value)
        if request is None:
            return {"type": "fail", "error": "unsupported operation %r of %r" % (f, self.workload)}
        read_only = f == "read"
        deadline = time.monotonic() + self.op_timeout * 0.9
        try:
            reply, node = self.call(request, deadline)
        except NotSent as e:
            return {"type": "fail", "error": str(e)}
        except Unknown as e:
            return {"type": "fail" if read_only else "info", "error": str(e)}
        if reply.get("ok"):
            return {"type": "ok", "value": self.ok_value(f, value, reply), "node": node}
        error = reply.get("error") or "error without a code"
        definite = reply.get("definite") is True
        return {"type": "fail" if definite or read_only else "info", "error": error, "node": node}


def leader(addrs):
    """`client.py --leader ADDRS`: prints the client address of the node
    that says it leads (the highest term if several do); exit 1 if none.
    The adapter's `cluster.primary` command."""
    best = None
    for a in addrs.split(","):
        host, _, port = a.rpartition(":")
        try:
            conn = Conn((host, int(port)), 0.3)
            conn.send(b'{"id":1,"op":"status"}\n', 0.3)
            status = json.loads(conn.read_line(0.3))
            conn.close()
        except (OSError, ValueError) as e:
            log("%s: %s" % (a, e))
            continue
        if status.get("role") == "leader" and (best is None or status.get("term", 0) > best[0]):
            best = (status.get("term", 0), a)
    if best is None:
        log("no node says it leads")
        return 1
    print(best[1])
    return 0


def main():
    if sys.argv[1:2] == ["--leader"]:
        sys.exit(leader(sys.argv[2]))
    first = sys.stdin.readline()
    if not first:
        return
    client = Client(json.loads(first))
    sys.stdout.write(json.dumps({"type": "init_ok"}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        op = json.loads(line)
        reply = client.invoke(op)
        reply["id"] = op["id"]
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
