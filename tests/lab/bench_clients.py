#!/usr/bin/env python3
"""Client side of the front-end benchmarks (tests/bench/frontend.sh).

    bench_clients.py pop3-rate HOST PORT SECONDS PROCS      -> sessions/s and client CPU s
    bench_clients.py imap-noop HOST PORT COUNT              -> NOOP round trip p50/p99 in us
    bench_clients.py imap-idle HOST PORT COUNT HOLD_FILE    -> log COUNT sessions in, idle until HOLD_FILE goes

Each prints one JSON object. pop3-rate runs PROCS processes (not threads:
no GIL between clients), each looping connect, USER/PASS, STAT, RETR 1,
QUIT for SECONDS.
"""
import json
import multiprocessing
import os
import poplib
import resource
import imaplib
import sys
import time


def pop3_loop(host, port, seconds, q):
    n = 0
    errors = 0
    end = time.time() + seconds
    while time.time() < end:
        try:
            p = poplib.POP3(host, port, timeout=10)
            p.user("alice")
            p.pass_("secret123")
            p.stat()
            p.retr(1)
            p.quit()
            n += 1
        except Exception:
            errors += 1
    ru = resource.getrusage(resource.RUSAGE_SELF)
    q.put((n, errors, ru.ru_utime + ru.ru_stime))


def pop3_rate(host, port, seconds, procs):
    q = multiprocessing.Queue()
    ps = [multiprocessing.Process(target=pop3_loop, args=(host, port, seconds, q)) for _ in range(procs)]
    t0 = time.time()
    for p in ps:
        p.start()
    res = [q.get() for _ in ps]
    for p in ps:
        p.join()
    wall = time.time() - t0
    n = sum(r[0] for r in res)
    print(json.dumps({"sessions": n, "errors": sum(r[1] for r in res), "wall_s": wall,
                      "rate": n / seconds, "client_cpu_s": sum(r[2] for r in res)}))


def imap_noop(host, port, count):
    m = imaplib.IMAP4(host, port, timeout=10)
    m.login("alice", "secret123")
    m.select("INBOX")
    for _ in range(200):    # warm up
        m.noop()
    lat = []
    for _ in range(count):
        t0 = time.perf_counter_ns()
        m.noop()
        lat.append((time.perf_counter_ns() - t0) / 1000.0)
    m.logout()
    lat.sort()
    print(json.dumps({"count": count, "p50_us": lat[len(lat) // 2], "p99_us": lat[int(len(lat) * 0.99)],
                      "max_us": lat[-1]}))


def imap_idle(host, port, count, hold_file):
    conns = []
    for _ in range(count):
        m = imaplib.IMAP4(host, port, timeout=10)
        m.login("alice", "secret123")
        m.select("INBOX")
        conns.append(m)
    print(json.dumps({"logged_in": len(conns)}), flush=True)
    while os.path.exists(hold_file):
        time.sleep(0.1)
    for m in conns:
        try:
            m.logout()
        except Exception:
            pass


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "pop3-rate":
        pop3_rate(host, port, float(sys.argv[4]), int(sys.argv[5]))
    elif mode == "imap-noop":
        imap_noop(host, port, int(sys.argv[4]))
    elif mode == "imap-idle":
        imap_idle(host, port, int(sys.argv[4]), sys.argv[5])


if __name__ == "__main__":
    main()
