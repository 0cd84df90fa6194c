#!/usr/bin/env python3
"""Loop real POP3, IMAP and HTTP sessions against the front-end for a while
and log one JSON line per session: start and end (wall-clock ms), protocol,
success, and the error. Used by the failover lab to measure outages.

    sessions.py HOST SECONDS OUTFILE [--workers N] [--user U --password P]
    sessions.py HOST SECONDS OUTFILE --rate R --protos pop3

With --rate, a new session starts every 1/R s whether or not the earlier
ones finished (a login loop: what many clients do at once; at most
--max-inflight at a time, the rest counted as skipped), instead of each
worker starting its next session when the last one ends.

With --stop-file F, no session starts once F exists (the sessions in flight
finish): a drill ends its load a fixed time after an action whose moment it
cannot know in advance; SECONDS stays the upper bound.
"""
import argparse
import http.client
import imaplib
import json
import os
import poplib
import socket
import sys
import threading
import time


def now_ms():
    return int(time.time() * 1000)


def pop3(host, a):
    p = poplib.POP3(host, 110, timeout=a.timeout)
    try:
        p.user(a.user)
        p.pass_(a.password)
        p.stat()
        p.retr(1)
        p.quit()
    finally:
        p.close()


def imap(host, a):
    m = imaplib.IMAP4(host, 143, timeout=a.timeout)
    try:
        m.login(a.user, a.password)
        typ, _ = m.select("INBOX")
        if typ != "OK":
            raise RuntimeError("select failed")
        typ, _ = m.fetch("1", "(BODY.PEEK[HEADER])")
        if typ != "OK":
            raise RuntimeError("fetch failed")
        m.logout()
    finally:
        try:
            m.shutdown()
        except OSError:
            pass


def http_get(host, a):
    c = http.client.HTTPConnection(host, 80, timeout=a.timeout)
    try:
        c.request("GET", "/health")
        r = c.getresponse()
        body = r.read()
        if r.status != 200 or not body.startswith(b"ok"):
            raise RuntimeError("http %d" % r.status)
        return body.decode().strip()
    finally:
        c.close()


PROTOS = {"pop3": pop3, "imap": imap, "http": http_get}


def running(a, deadline):
    return time.time() < deadline and not (a.stop_file and os.path.exists(a.stop_file))


def one_session(proto, a, out, lock):
    fn = PROTOS[proto]
    rec = {"proto": proto, "start": now_ms()}
    try:
        node = fn(a.host, a)
        rec["ok"] = True
        if node:
            rec["node"] = node
    except (OSError, EOFError, socket.timeout, imaplib.IMAP4.error, poplib.error_proto,
            http.client.HTTPException, RuntimeError) as e:
        rec["ok"] = False
        rec["err"] = "%s: %s" % (type(e).__name__, str(e)[:120])
    rec["end"] = now_ms()
    with lock:
        out.write(json.dumps(rec) + "\n")
        out.flush()
    return rec["ok"]


def paced(a, deadline, out, lock):
    """--rate: start sessions on a clock, each in its own thread."""
    protos = a.protos.split(",")
    live, skipped, i = [], 0, 0
    nxt = time.time()
    while nxt < deadline:
        time.sleep(max(0.0, nxt - time.time()))
        if not running(a, deadline):
            break
        live = [t for t in live if t.is_alive()]
        if len(live) < a.max_inflight:
            t = threading.Thread(target=one_session, args=(protos[i % len(protos)], a, out, lock))
            t.start()
            live.append(t)
        else:
            skipped += 1
        i += 1
        nxt += 1.0 / a.rate
    for t in live:
        t.join()
    if skipped:
        print("sessions.py: %d sessions not started (--max-inflight %d reached)" % (skipped, a.max_inflight),
              file=sys.stderr)


def worker(proto, a, deadline, out, lock):
    while running(a, deadline):
        if not one_session(proto, a, out, lock):
            time.sleep(0.02)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("seconds", type=float)
    ap.add_argument("outfile")
    ap.add_argument("--workers", type=int, default=2, help="workers per protocol")
    ap.add_argument("--user", default="alice")
    ap.add_argument("--password", default="secret123")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--protos", default="pop3,imap,http")
    ap.add_argument("--rate", type=float, default=0, help="sessions started per second (a login loop)")
    ap.add_argument("--max-inflight", type=int, default=200)
    ap.add_argument("--stop-file", help="start no session once this file exists")
    a = ap.parse_args()
    deadline = time.time() + a.seconds
    lock = threading.Lock()
    with open(a.outfile, "w") as out:
        if a.rate > 0:
            paced(a, deadline, out, lock)
            return
        ts = [threading.Thread(target=worker, args=(p, a, deadline, out, lock))
              for p in a.protos.split(",") for _ in range(a.workers)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()


if __name__ == "__main__":
    main()
