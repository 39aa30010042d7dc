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
  info  sent but no definite answer (faultline records an unknown read as
        fail itself: a read changes nothing).
"""

import json
import socket
import sys
import time

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

    def invoke(self, call):
        """Runs one call (docs/adapters.md): its wire request is the same
        operation under the node's name for it."""
        f = call["f"]
        op = WIRE_OPS.get(f)
        if op is None:
            return {"type": "fail", "error": "unsupported call %r" % f}
        request = {"op": op}
        for field, value in call.items():
            if field in ("f", "type", "id", "process", "timeout_ms"):
                continue
            request[RENAMED.get((f, field), field)] = value
        timeout = call.get("timeout_ms", self.op_timeout * 1000) / 1000.0
        deadline = time.monotonic() + timeout * 0.9
        try:
            reply, node = self.call(request, deadline)
        except NotSent as e:
            return {"type": "fail", "error": str(e)}
        except Unknown as e:
            return {"type": "info", "error": str(e)}
        if reply.get("ok"):
            answer = {"type": "ok", "node": node}
            for field in ("value", "token"):
                if reply.get(field) is not None:
                    answer[field] = reply[field]
            return answer
        answer = {
            "type": "fail" if reply.get("definite") is True else "info",
            "error": reply.get("error") or "error without a code",
            "node": node,
        }
        if reply.get("token") is not None:
            answer["token"] = reply["token"]
        return answer


# The node's wire operation for each call, and the fields it names otherwise.
WIRE_OPS = {
    "read": "read",
    "write": "write",
    "cas": "cas",
    "set-add": "append",
    "increment": "add",
    "acquire": "acquire",
    "renew": "renew",
    "release": "release",
    "fenced-write": "fenced_write",
    "txn": "txn",
}
RENAMED = {("set-add", "element"): "value", ("txn", "value"): "mops"}


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
        call = json.loads(line)
        reply = client.invoke(call)
        reply["id"] = call["id"]
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
