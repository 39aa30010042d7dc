#!/usr/bin/python3
"""A client that breaks the adapter protocol on purpose, for the tests of
how faultline copes (harness/tests/adapter_inputs.rs).

  saboteur.py MODE EVERY REAL_CLIENT...

It runs REAL_CLIENT (a working adapter client) and passes lines through,
except that every EVERY-th invoke it misbehaves, by MODE:
  garbage   prints a line that is not JSON instead of the answer
  wrong-id  answers with another invoke's id
  exit      exits (status 3) without answering
  silent    never answers (sleeps)
"""

import json
import subprocess
import sys
import time

mode, every, real = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
child = subprocess.Popen(real, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def relay(line):
    child.stdin.write(line)
    child.stdin.flush()
    return child.stdout.readline()


sys.stdout.write(relay(sys.stdin.readline()))
sys.stdout.flush()
count = 0
for line in sys.stdin:
    count += 1
    answer = relay(line)
    if count % every == 0:
        if mode == "garbage":
            answer = "Traceback (most recent call last): this is not JSON\n"
        elif mode == "wrong-id":
            a = json.loads(answer)
            a["id"] = a["id"] + 1000
            answer = json.dumps(a) + "\n"
        elif mode == "exit":
            sys.exit(3)
        elif mode == "silent":
            time.sleep(60)
    sys.stdout.write(answer)
    sys.stdout.flush()
