#!/usr/bin/python3
"""The faultline client for PostgreSQL (examples/adapters/postgres.toml).

Speaks faultline's adapter protocol (docs/adapters.md: JSON Lines on stdin
and stdout) and runs each `txn` as one PostgreSQL transaction at the run's
isolation level, as Jepsen's PostgreSQL append test does:

- keys live in three tables, `txn0`..`txn2` (key k in `txn{k % 3}`), one
  row per key: `id` (the key), `sk` (the same, not indexed) and `val`;
- a read selects `val` by `id` or, at random, by `sk` (a table scan);
- list-append: `val` is a comma-separated list; an append is `INSERT ...
  ON CONFLICT (id) DO UPDATE SET val = CONCAT(t.val, ',', v)`, or with
  `--param upsert=update-insert` an `UPDATE` that, when no row matched,
  falls back to an `INSERT` in a savepoint and, if that raced with
  another insert, to the `UPDATE` again;
- rw-register: `val` is the value; a write is the same upsert setting it;
- micro-ops are spaced by a random pause of up to `think_ms`
  milliseconds, as Jepsen's, so transactions overlap.

Outcomes, from what PostgreSQL guarantees about a transaction whose COMMIT
was or was not sent:

  ok    COMMIT returned;
  fail  PostgreSQL aborted it (serialization failure, deadlock, any error
        before COMMIT), the connection could not be made, or it broke
        before COMMIT was sent (the server rolls back a transaction whose
        connection is gone); also a read-only transaction whose COMMIT got
        no answer (it changed nothing);
  info  the connection broke, or an error other than an abort came, while
        COMMIT was in flight: it may have committed.

Needs Debian's python3-psycopg2 (hence /usr/bin/python3).
"""

import json
import random
import sys
import time

try:
    import psycopg2
    import psycopg2.errors
    import psycopg2.extensions as ext
except ImportError as e:
    print(f"postgres client: {e}: install Debian's python3-psycopg2 "
          "(apt-get install -y python3-psycopg2)", file=sys.stderr, flush=True)
    sys.exit(3)

LEVELS = {
    "read-committed": ext.ISOLATION_LEVEL_READ_COMMITTED,
    "repeatable-read": ext.ISOLATION_LEVEL_REPEATABLE_READ,
    "serializable": ext.ISOLATION_LEVEL_SERIALIZABLE,
}
TABLES = 3
# What PostgreSQL answers when it aborted the transaction itself.
ABORTS = (psycopg2.errors.SerializationFailure, psycopg2.errors.DeadlockDetected)


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


class Aborted(Exception):
    """The transaction certainly did not commit."""


class Unknown(Exception):
    """It may have committed."""


def table(key):
    return f"txn{key % TABLES}"


class Client:
    def __init__(self, init, level):
        home = next(n for n in init["nodes"] if n["name"] == init["home"])
        self.addr = (home["ip"], home["ports"]["pg"])
        self.node = home["name"]
        self.workload = init["workload"]
        params = init.get("params", {})
        self.level = level
        if self.level not in LEVELS:
            raise SystemExit(f"postgres client: isolation {self.level!r}: "
                             f"PostgreSQL takes {', '.join(sorted(LEVELS))}")
        self.upsert = params.get("upsert", "on-conflict")
        if self.upsert not in ("on-conflict", "update-insert"):
            raise SystemExit(f"postgres client: upsert={self.upsert!r}: "
                             "use on-conflict or update-insert")
        self.think_s = int(params.get("think_ms", "10")) / 1000.0
        self.rng = random.Random(init["worker"] * 7919 + int(time.time_ns() % 1_000_000))
        self.conn = None

    def connect(self, timeout_s):
        conn = psycopg2.connect(host=self.addr[0], port=self.addr[1], user="postgres",
                                dbname="postgres", connect_timeout=max(1, round(timeout_s)),
                                application_name="faultline")
        conn.set_session(isolation_level=LEVELS[self.level], autocommit=False)
        return conn

    def drop(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg2.Error:
                pass
        self.conn = None

    def read(self, cur, key):
        column = "id" if self.rng.random() < 0.5 else "sk"
        cur.execute(f"SELECT val FROM {table(key)} WHERE {column} = %s", (key,))
        row = cur.fetchone()
        if self.workload == "list-append":
            if row is None or row[0] is None or row[0] == "":
                return []
            return [int(x) for x in row[0].split(",")]
        return None if row is None or row[0] is None else int(row[0])

    def append(self, cur, key, value):
        t = table(key)
        text = str(value)
        if self.upsert == "on-conflict":
            cur.execute(f"INSERT INTO {t} AS t (id, sk, val) VALUES (%s, %s, %s) "
                        f"ON CONFLICT (id) DO UPDATE SET val = CONCAT(t.val, ',', %s)",
                        (key, key, text, text))
            return
        update = f"UPDATE {t} SET val = CONCAT(val, ',', %s) WHERE id = %s"
        cur.execute(update, (text, key))
        if cur.rowcount > 0:
            return
        cur.execute("SAVEPOINT upsert")
        try:
            cur.execute(f"INSERT INTO {t} (id, sk, val) VALUES (%s, %s, %s)", (key, key, text))
            cur.execute("RELEASE SAVEPOINT upsert")
            return
        except psycopg2.errors.UniqueViolation:
            cur.execute("ROLLBACK TO SAVEPOINT upsert")
        cur.execute(update, (text, key))
        if cur.rowcount == 0:
            raise Aborted("upsert-failed")

    def write(self, cur, key, value):
        cur.execute(f"INSERT INTO {table(key)} AS t (id, sk, val) VALUES (%s, %s, %s) "
                    f"ON CONFLICT (id) DO UPDATE SET val = EXCLUDED.val",
                    (key, key, str(value)))

    def run(self, mops):
        """The micro-ops with reads filled in, committed; Aborted or
        Unknown otherwise."""
        done = []
        try:
            with self.conn.cursor() as cur:
                for i, (f, key, value) in enumerate(mops):
                    if i > 0 and self.think_s > 0:
                        time.sleep(self.rng.random() * self.think_s)
                    if f == "r":
                        done.append(["r", key, self.read(cur, key)])
                    elif f == "append":
                        self.append(cur, key, value)
                        done.append([f, key, value])
                    elif f == "w":
                        self.write(cur, key, value)
                        done.append([f, key, value])
                    else:
                        raise ValueError(f"unknown micro-op {f!r}")
        except ABORTS as e:
            self.rollback()
            raise Aborted(type(e).__name__)
        except psycopg2.Error as e:
            # COMMIT was not sent: PostgreSQL rolls the transaction back,
            # whether it answered with an error or the connection broke.
            if self.conn.closed:
                self.drop()
            else:
                self.rollback()
            raise Aborted(describe(e))
        except Aborted:
            self.rollback()
            raise
        try:
            self.conn.commit()
        except ABORTS as e:
            raise Aborted(type(e).__name__)
        except psycopg2.Error as e:
            self.drop()
            raise Unknown(describe(e))
        return done

    def rollback(self):
        try:
            self.conn.rollback()
        except psycopg2.Error:
            self.drop()

    def invoke(self, call):
        if call.get("f") != "txn":
            return {"type": "fail", "error": f"unsupported-call {call.get('f')}"}
        mops = call["value"]
        timeout_s = call.get("timeout_ms", 1000) / 1000.0
        if self.conn is not None and self.conn.closed:
            self.drop()
        if self.conn is None:
            try:
                self.conn = self.connect(timeout_s)
            except psycopg2.Error as e:
                return {"type": "fail", "error": f"connect: {describe(e)}"}
        try:
            return {"type": "ok", "value": self.run(mops), "node": self.node}
        except Aborted as e:
            return {"type": "fail", "error": str(e), "node": self.node}
        except Unknown as e:
            read_only = all(m[0] == "r" for m in mops)
            return {"type": "fail" if read_only else "info", "error": str(e), "node": self.node}


def describe(e):
    code = getattr(e, "pgcode", None)
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}{' ' + code if code else ''}: {text[:160]}"


def main():
    args = sys.argv[1:]
    if len(args) != 2 or args[0] != "--isolation":
        raise SystemExit("usage: client.py --isolation LEVEL (faultline fills in {{isolation}})")
    first = sys.stdin.readline()
    if not first:
        return
    client = Client(json.loads(first), args[1])
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
