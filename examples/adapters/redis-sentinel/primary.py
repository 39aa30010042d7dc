#!/usr/bin/python3
"""Which Redis instance is the primary, by the sentinels' majority.

  primary.py SENTINELS            prints the primary's ip:port, as more than
                                  half of the sentinels name it (exit 1 if
                                  no majority names one)
  primary.py --settled SENTINELS REDISES
                                  exits 0 only when the cluster has settled:
                                  every sentinel names the same primary, it
                                  says it is the master, and every other
                                  instance replicates from it, link up

SENTINELS and REDISES are comma lists of ip:port. faultline runs the first
form as the adapter's `cluster.primary` (faults aimed at the leader) and the
second as `cluster.healthy` (after start, and after healing, before the
final reads: an old primary that has not yet been turned into a replica
still serves the writes it will lose).
"""

import sys
from collections import Counter

import redis

TIMEOUT = 0.3


def addrs(text):
    out = []
    for a in text.split(","):
        host, _, port = a.rpartition(":")
        out.append((host, int(port)))
    return out


def ask(addr, *command):
    r = redis.Redis(host=addr[0], port=addr[1], socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
    try:
        return r.execute_command(*command)
    finally:
        r.close()


def named_by_sentinels(sentinels):
    answers = []
    for s in sentinels:
        try:
            ip, port = ask(s, "SENTINEL", "get-master-addr-by-name", "mymaster")
            answers.append("%s:%s" % (ip.decode(), port.decode()))
        except Exception as e:
            print("sentinel %s:%s: %s" % (s[0], s[1], e), file=sys.stderr)
            answers.append(None)
    return answers


def main():
    args = sys.argv[1:]
    settled = args[:1] == ["--settled"]
    if settled:
        args = args[1:]
    sentinels = addrs(args[0])
    answers = named_by_sentinels(sentinels)
    counts = Counter(a for a in answers if a is not None)
    best, votes = counts.most_common(1)[0] if counts else (None, 0)
    if votes * 2 <= len(sentinels):
        print("no primary named by a majority of sentinels: %s" % answers, file=sys.stderr)
        return 1
    if not settled:
        print(best)
        return 0
    if votes != len(sentinels):
        print("sentinels disagree: %s" % answers, file=sys.stderr)
        return 1
    for r in addrs(args[1]):
        me = "%s:%s" % r
        try:
            role = ask(r, "ROLE")
        except Exception as e:
            print("%s: %s" % (me, e), file=sys.stderr)
            return 1
        kind = role[0].decode()
        if me == best:
            if kind != "master":
                print("%s is named primary but is a %s" % (me, kind), file=sys.stderr)
                return 1
        else:
            upstream = "%s:%s" % (role[1].decode(), role[2]) if kind == "slave" else None
            if upstream != best or role[3].decode() != "connected":
                print("%s: %s, not a connected replica of %s" % (me, role[:4], best), file=sys.stderr)
                return 1
    print(best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
