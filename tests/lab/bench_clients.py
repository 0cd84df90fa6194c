#!/usr/bin/env python3
"""Client side of the front-end benchmarks (tests/bench/frontend.sh).

    bench_clients.py pop3-rate HOST PORT SECONDS PROCS      -> sessions/s and client CPU s
    bench_clients.py imap-noop HOST PORT COUNT              -> NOOP round trip p50/p99 in us
    bench_clients.py imap-idle HOST PORT COUNT HOLD_FILE    -> log COUNT sessions in, idle until HOLD_FILE goes
    bench_clients.py summary pop3|noop FILE                -> medians over frontend.sh's rounds

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
import statistics
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


def rounds(path):
    """{round: {path: measurement}} from frontend.sh's JSON lines; None if one run failed."""
    rows = [json.loads(l) for l in open(path)]
    if any(r["m"] is None for r in rows):
        return None
    by = {}
    for r in rows:
        by.setdefault(r["round"], {})[r["path"]] = r["m"]
    return by


def summary(kind, path):
    """Median over rounds of each path against that round's direct run ("d")."""
    by = rounds(path)
    if by is None:
        sys.exit(1)
    med = statistics.median
    if kind == "pop3":
        ratio = {p: round(med(v[p]["rate"] / v["d"]["rate"] for v in by.values()), 3) for p in ("e", "h1", "h2")}
        rate = {p: round(med(v[p]["rate"] for v in by.values()), 1) for p in ("d", "e")}
        print("POP3 sessions/s (median of %d rounds): direct %s, through esproxy %s, ratio %s (target >= 0.8); "
              "references: HAProxy one hop ratio %s, two hops %s"
              % (len(by), rate["d"], rate["e"], ratio["e"], ratio["h1"], ratio["h2"]))
        print(sum(m["errors"] for v in by.values() for m in v.values()))
    else:
        added = {p: round(med(v[p]["p99_us"] - v["d"]["p99_us"] for v in by.values())) for p in ("e", "h1", "h2")}
        p50 = {p: round(med(v[p]["p50_us"] for v in by.values())) for p in ("d", "e", "h1", "h2")}
        print("IMAP NOOP p99 added (median of %d rounds): esproxy %d us (target <= 150); references: HAProxy one "
              "hop %d us, two hops %d us; p50 direct %d, esproxy %d, HAProxy one hop %d, two hops %d us"
              % (len(by), added["e"], added["h1"], added["h2"], p50["d"], p50["e"], p50["h1"], p50["h2"]))


def main():
    if sys.argv[1] == "summary":
        summary(sys.argv[2], sys.argv[3])
        return
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "pop3-rate":
        pop3_rate(host, port, float(sys.argv[4]), int(sys.argv[5]))
    elif mode == "imap-noop":
        imap_noop(host, port, int(sys.argv[4]))
    elif mode == "imap-idle":
        imap_idle(host, port, int(sys.argv[4]), sys.argv[5])


if __name__ == "__main__":
    main()
