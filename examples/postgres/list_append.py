#!/usr/bin/python3
"""List-append transactions against a running PostgreSQL, as Jepsen's
PostgreSQL append test does them, written as a faultline history
(docs/history-format.md) for `faultline check --model list-append`.

One row per key in table `lists(k int primary key, v text)`; an append is
`INSERT ... ON CONFLICT (k) DO UPDATE SET v = lists.v || ',' || EXCLUDED.v`,
a read is `SELECT v FROM lists WHERE k = %s`. Each worker thread has its own
connection at the isolation level asked for and runs transactions of 1-4
micro-ops on a small rotating pool of keys (Elle's generator: at most 32
appends per key, values unique). A transaction PostgreSQL aborts
(serialization failure, deadlock) is `fail`; a lost connection or any other
error at commit is `info` and the worker continues as a fresh process.

Needs only psycopg2 (Debian's python3-psycopg2, importable by
/usr/bin/python3). Usage:

    list_append.py --port 23001 --isolation serializable --seconds 10 --out history.jsonl
"""

import argparse
import json
import random
import sys
import threading
import time

import psycopg2
import psycopg2.errors
import psycopg2.extensions as ext

LEVELS = {
    "read-committed": ext.ISOLATION_LEVEL_READ_COMMITTED,
    "repeatable-read": ext.ISOLATION_LEVEL_REPEATABLE_READ,
    "serializable": ext.ISOLATION_LEVEL_SERIALIZABLE,
}


class Recorder:
    """Appends events to the history with a global index and a monotonic time."""

    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()
        self.index = 0
        self.start = time.monotonic_ns()

    def event(self, process, kind, value, error=None):
        with self.lock:
            e = {
                "index": self.index,
                "time": time.monotonic_ns() - self.start,
                "process": process,
                "type": kind,
                "f": "txn",
                "value": value,
            }
            if error is not None:
                e["error"] = error
            self.out.write(json.dumps(e) + "\n")
            self.index += 1


class Keys:
    """Elle's rotating key pool: `active` keys at once, a key retires after
    `max_writes` appends; values are unique over the whole run."""

    def __init__(self, active, max_writes):
        self.lock = threading.Lock()
        self.pool = list(range(active))
        self.next_key = active
        self.writes = {}
        self.max_writes = max_writes
        self.next_value = 1

    def txn(self, rng):
        with self.lock:
            mops = []
            for _ in range(rng.randint(1, 4)):
                k = rng.choice(self.pool)
                if rng.random() < 0.5:
                    mops.append(["r", k, None])
                else:
                    mops.append(["append", k, self.next_value])
                    self.next_value += 1
                    self.writes[k] = self.writes.get(k, 0) + 1
                    if self.writes[k] >= self.max_writes:
                        self.pool[self.pool.index(k)] = self.next_key
                        self.next_key += 1
            return mops


def connect(args):
    conn = psycopg2.connect(host="127.0.0.1", port=args.port, user=args.user, dbname=args.db,
                            connect_timeout=5)
    conn.set_session(isolation_level=LEVELS[args.isolation])
    return conn


def run_txn(conn, mops):
    """Runs the micro-ops in one transaction; returns them with reads filled."""
    done = []
    with conn.cursor() as cur:
        for f, k, v in mops:
            if f == "r":
                cur.execute("SELECT v FROM lists WHERE k = %s", (k,))
                row = cur.fetchone()
                seen = [] if row is None or row[0] is None else [int(x) for x in row[0].split(",")]
                done.append(["r", k, seen])
            else:
                cur.execute(
                    "INSERT INTO lists (k, v) VALUES (%s, %s) "
                    "ON CONFLICT (k) DO UPDATE SET v = lists.v || ',' || EXCLUDED.v",
                    (k, str(v)),
                )
                done.append([f, k, v])
    conn.commit()
    return done


def worker(args, number, keys, rec, deadline, processes):
    rng = random.Random(args.seed * 1000 + number)
    process = number
    conn = None
    while time.monotonic() < deadline:
        mops = keys.txn(rng)
        read_only = all(m[0] == "r" for m in mops)
        rec.event(process, "invoke", mops)
        try:
            if conn is None:
                conn = connect(args)
            rec.event(process, "ok", run_txn(conn, mops))
        except (psycopg2.errors.SerializationFailure, psycopg2.errors.DeadlockDetected) as e:
            conn.rollback()
            rec.event(process, "fail", mops, error=type(e).__name__)
        except psycopg2.Error as e:
            # Unknown: the commit may have happened. The process never
            # issues again; the worker continues as a new one.
            rec.event(process, "fail" if read_only else "info", mops,
                      error=f"{type(e).__name__}: {str(e).strip()[:200]}")
            try:
                if conn is not None:
                    conn.close()
            except psycopg2.Error:
                pass
            conn = None
            with processes["lock"]:
                process = processes["next"]
                processes["next"] += 1
    if conn is not None:
        conn.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", default="postgres")
    p.add_argument("--db", default="postgres")
    p.add_argument("--isolation", choices=sorted(LEVELS), required=True)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--workers", type=int, default=10)
    p.add_argument("--active-keys", type=int, default=5)
    p.add_argument("--max-writes-per-key", type=int, default=32)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True)
    args = p.parse_args()

    setup = psycopg2.connect(host="127.0.0.1", port=args.port, user=args.user, dbname=args.db,
                             connect_timeout=5)
    setup.autocommit = True
    with setup.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS lists")
        cur.execute("CREATE TABLE lists (k int PRIMARY KEY, v text)")
    setup.close()

    keys = Keys(args.active_keys, args.max_writes_per_key)
    processes = {"lock": threading.Lock(), "next": args.workers}
    with open(args.out, "w") as out:
        rec = Recorder(out)
        deadline = time.monotonic() + args.seconds
        threads = [threading.Thread(target=worker, args=(args, i, keys, rec, deadline, processes))
                   for i in range(args.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    print(f"{rec.index} events in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
