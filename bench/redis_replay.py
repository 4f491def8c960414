#!/usr/bin/env python3
"""What a crawl's Redis work costs a Redis server that has a core to itself.

bench/redis_shards.sh measures Redis CPU while two workers, 96 test sites
and one to three Redis servers share this machine's two cores, so every
server pays for cold caches and being scheduled out, and more shards mean
more of that. This replays what one server received during such a crawl
(a `redis-cli monitor` capture) on a fresh redis-server pinned to a core
of its own, one command at a time as clients send them (each pays its
own read, write and wake-up; PIPELINE=N sends N at a time), and prints
the server's CPU per lease it handed out (its own pages) as a Markdown
row.

    python3 bench/redis_replay.py CAPTURE LABEL [CORE]

The capture's scripts come with it (the first EVALSHA of each fails with
NOSCRIPT on a fresh server, so the client's SCRIPT LOAD is in it);
commands only a live crawl needs (subscriptions, WAIT, CLUSTER, INFO) are
left out. Loopback only.
"""

import os
import re
import socket
import subprocess
import sys
import time

import redis

SKIP = {
    b"SUBSCRIBE", b"PSUBSCRIBE", b"UNSUBSCRIBE", b"MONITOR", b"INFO", b"CONFIG",
    b"CLIENT", b"PING", b"SCAN", b"UNLINK", b"HELLO", b"CLUSTER", b"READONLY",
    b"ASKING", b"WAIT", b"SLOWLOG", b"SELECT", b"AUTH",
}
QUOTED = re.compile(rb'"((?:[^"\\]|\\.)*)"')
ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("a"): 7, ord("b"): 8}


def unquote(s: bytes) -> bytes:
    """Undo the quoting of MONITOR output (sdscatrepr)."""
    out, i = bytearray(), 0
    while i < len(s):
        c = s[i]
        if c == 92 and i + 1 < len(s):
            n = s[i + 1]
            if n == ord("x"):
                out.append(int(s[i + 2:i + 4], 16))
                i += 4
                continue
            out.append(ESCAPES.get(n, n))
            i += 2
            continue
        out.append(c)
        i += 1
    return bytes(out)


def commands(path):
    """The clients' commands of a capture, in order (not those scripts ran)."""
    with open(path, "rb") as f:
        for line in f:
            if not line[:1].isdigit() or b"[0 lua]" in line or b" lua]" in line:
                continue
            args = [unquote(a) for a in QUOTED.findall(line)]
            if args and args[0].upper() not in SKIP:
                yield args


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    capture, label = sys.argv[1], sys.argv[2]
    core = sys.argv[3] if len(sys.argv) > 3 else None
    pipeline = int(os.environ.get("PIPELINE", "1"))
    cmds = list(commands(capture))
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    if core is not None:
        argv = ["taskset", "-c", core] + argv
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        r = redis.Redis(port=port)
        for _ in range(100):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)

        def cpu():
            i = r.info("cpu")
            return i["used_cpu_user"] + i["used_cpu_sys"]

        before = cpu()
        p = r.pipeline(transaction=False)
        for n, args in enumerate(cmds, 1):
            p.execute_command(*args)
            if n % pipeline == 0:
                p.execute(raise_on_error=False)
        p.execute(raise_on_error=False)
        used = cpu() - before
        leases = sum(int(r.get(k) or 0) for k in r.scan_iter(match="*leaseseq", count=1000))
        calls = r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
        if leases:
            print(f"| {label} | {leases} | {calls / leases:.2f} | {used / leases * 1e6:.1f} | {leases / used:,.0f} |")
        else:
            print(f"| {label} | 0 | - | - | - |")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
