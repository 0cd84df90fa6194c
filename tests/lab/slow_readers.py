#!/usr/bin/env python3
"""Clients that never read, against an esproxy frontend (tests/net/slow_reader_lab.sh).

Eight attackers connect with tiny socket buffers and send without reading:
POP3 pouring CAPA (plain, after STLS, implicit TLS), IMAP before login
pouring CAPABILITY and NOOP (plain, after STARTTLS) and HTTP pipelining
GET of a large file (plain twice, implicit TLS). Meanwhile the frontend's
RSS is sampled from /proc. Once every attacker is stalled (the frontend
stopped reading it) an ordinary client logs in and fetches through the same
frontend. Then every attacker finishes its last command, reads everything
and checks that each command it sent got its answer, in order. Last, an
HTTP client that never reads, on a listener with a short preauth_idle_s,
must be disconnected within the bound it is given.

Prints "PASS ..." / "FAIL ..." lines and the figures; exit status 1 on a
failure. The memory bound comes from the command line (the lab derives it
from the configuration).
"""
import argparse
import poplib
import imaplib
import select
import socket
import ssl
import sys
import threading
import time
import urllib.request

failures = 0


def check(ok, name, why=""):
    global failures
    if ok:
        print("PASS " + name, flush=True)
    else:
        failures += 1
        print("FAIL %s: %s" % (name, why), flush=True)


def recv_line(s):
    """One line, byte by byte: nothing after it may be taken before TLS starts."""
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            raise RuntimeError("closed after %r" % line)
        line += b
    return line


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Attacker(threading.Thread):
    """Connects, optionally upgrades to TLS, then sends `unit` over and over
    (HTTP: `limit` units) without reading, until told to stop."""

    def __init__(self, name, port, kind, unit, tls=None, limit=None):
        super().__init__(daemon=True)
        self.label, self.port, self.kind, self.unit = name, port, kind, unit
        self.tls, self.limit = tls, limit
        self.sent = 0
        self.last_progress = time.monotonic()
        self.stop = threading.Event()
        self.error = None
        self.sock = None
        self.pending = b""     # a send that would have blocked: TLS must retry it as it was

    def connect(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        s.settimeout(ARGS.timeout)
        s.connect((ARGS.host, self.port))
        if self.tls == "starttls":
            recv_line(s)                                   # greeting
            s.sendall(b"STLS\r\n" if self.kind == "pop3" else b"t STARTTLS\r\n")
            line = recv_line(s)
            while line.startswith(b"*"):
                line = recv_line(s)
            if b"OK" not in line:
                raise RuntimeError("STARTTLS refused: %r" % line)
        if self.tls is not None:
            s = CTX.wrap_socket(s, server_hostname="mail.lab.test")
        return s

    def run(self):
        try:
            self.sock = self.connect()
            self.sock.setblocking(False)
            data, off = self.unit * 64, 0
            while not self.stop.is_set():
                if self.limit is not None and self.sent >= self.limit * len(self.unit):
                    break
                end = len(data) if self.limit is None else min(len(data), self.limit * len(self.unit) - self.sent + off)
                self.pending = data[off:end]
                try:
                    n = self.sock.send(self.pending)
                except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    select.select([], [self.sock], [], 0.1)
                    continue
                self.pending = b""
                self.sent += n
                self.last_progress = time.monotonic()
                off = (off + n) % len(self.unit)
        except Exception as e:      # reported by the main thread
            self.error = "%s: %s" % (type(e).__name__, e)

    def stalled_for(self, now):
        if self.limit is not None and self.sent >= self.limit * len(self.unit):
            return float("inf")     # everything sent: it only does not read
        return now - self.last_progress

    # ---- resume: read everything while finishing the last command, check the answers ----
    def finish(self, result):
        t0 = time.monotonic()
        try:
            got = bytearray()
            rest = self.pending    # TLS: a send that would block is retried as it was
            self.sent += len(rest)
            part = self.sent % len(self.unit)
            if part:
                rest += self.unit[part:]
                self.sent += len(self.unit) - part
            self.exchange(rest + self.last, got)
            result["ok"], result["what"] = self.verify(self.sent // len(self.unit), bytes(got))
            result["bytes"] = len(got)
        except Exception as e:
            result["ok"], result["what"] = False, repr(e)
        result["ms"] = (time.monotonic() - t0) * 1000

    def exchange(self, out, got):
        """Send out while reading into got, until the server closes (one
        thread: a TLS object must not read and write at once)."""
        s = self.sock
        last = time.monotonic()
        while True:
            if time.monotonic() - last > ARGS.timeout:
                raise TimeoutError("no progress for %.0f s" % ARGS.timeout)
            buffered = self.tls is not None and s.pending() > 0
            r, w, _ = select.select([s], [s] if out else [], [], 0 if buffered else 0.1)
            if r or buffered:
                try:
                    b = s.recv(1 << 20)
                    if not b:
                        return
                    got += b
                    last = time.monotonic()
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    pass
                except (ConnectionResetError, ssl.SSLEOFError):
                    return
            if out and w:
                try:
                    out = out[s.send(out):]
                    last = time.monotonic()
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    pass


class Mail(Attacker):
    """POP3 or IMAP before login: each unit of commands gets one of each answer line."""

    def __init__(self, name, port, kind, tls=None):
        unit, self.last, self.answers, self.bye = {
            "pop3": (b"CAPA\r\n", b"QUIT\r\n", [b"."], b"+OK"),
            "imap": (b"a CAPABILITY\r\nb NOOP\r\n", b"z LOGOUT\r\n",
                     [b"a OK CAPABILITY completed", b"b OK NOOP completed"], b"z OK"),
        }[kind]
        super().__init__(name, port, kind, unit, tls)

    def verify(self, units, got):
        lines = got.split(b"\r\n")
        counts = [lines.count(a) for a in self.answers]
        bye = any(l.startswith(self.bye) for l in lines[-3:])
        return all(c == units for c in counts) and bye, "%d x %r sent, answers %s, %r %s" % (
            units, self.unit, "+".join(map(str, counts)), self.last, "answered" if bye else "not answered")


class Http(Attacker):
    def __init__(self, name, port, tls=None):
        super().__init__(name, port, "http", b"GET /big.bin HTTP/1.1\r\nHost: lab\r\n\r\n", tls, ARGS.http_requests)
        self.last = b"GET /health HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n"

    def verify(self, units, got):
        ok, pos, n = 0, 0, 0
        while pos < len(got):
            end = got.find(b"\r\n\r\n", pos)
            if end < 0:
                break
            head = got[pos:end].split(b"\r\n")
            clen = 0
            for h in head[1:]:
                k, _, v = h.partition(b":")
                if k.strip().lower() == b"content-length":
                    clen = int(v)
            body = got[end + 4:end + 4 + clen]
            n += 1
            if n <= units and head[0].startswith(b"HTTP/1.1 200") and clen == ARGS.big_size and len(body) == clen:
                ok += 1
            pos = end + 4 + clen
        health = got.endswith(b"ok be1\n")
        return ok == units and n == units + 1 and health, "%d GET sent, %d full %d-byte answers, %d responses, /health %s" % (
            units, ok, ARGS.big_size, n, "answered" if health else "not answered")


def ordinary_session():
    """One reading client: HTTP health and the big file, POP3 and IMAP logins. Returns seconds."""
    t0 = time.monotonic()
    h = "http://%s/" % ARGS.host
    assert urllib.request.urlopen(h + "health", timeout=ARGS.timeout).read() == b"ok be1\n"
    body = urllib.request.urlopen(h + "big.bin", timeout=ARGS.timeout).read()
    assert len(body) == ARGS.big_size, len(body)
    p = poplib.POP3(ARGS.host, 110, timeout=ARGS.timeout)
    p.user("alice")
    p.pass_("secret123")
    assert p.stat()[0] >= 1
    resp, lines, octets = p.retr(1)
    assert any(b"lab message" in l for l in lines)
    p.quit()
    m = imaplib.IMAP4(ARGS.host, 143, timeout=ARGS.timeout)
    m.login("alice", "secret123")
    typ, data = m.select("INBOX")
    assert typ == "OK" and int(data[0]) >= 1, data
    m.logout()
    return time.monotonic() - t0


def stalled_http_is_closed():
    """An HTTP client that pipelines GETs and never reads, on a listener
    with a short idle time: the frontend must end it (RST after its close
    linger: the client's socket leaves ESTABLISHED) within the bound."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((ARGS.host, ARGS.stall_port))
    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: lab\r\n\r\n" * ARGS.http_requests)
    t0 = time.monotonic()
    state = 1
    while state == 1 and time.monotonic() - t0 < ARGS.stall_bound_ms / 1000.0:
        time.sleep(0.1)
        state = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]    # tcpi_state; 1 = ESTABLISHED
    ms = (time.monotonic() - t0) * 1000
    s.close()
    check(state != 1, "an HTTP client that never reads is disconnected after %.0f ms (bound %d ms)" % (
        ms, ARGS.stall_bound_ms), "still connected after %.0f ms" % ms)


def timed(result):
    try:
        result["s"] = ordinary_session()
    except Exception as e:
        result["error"] = repr(e)


def main():
    global ARGS, CTX
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--fe-pid", type=int, required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--big-size", type=int, required=True)
    ap.add_argument("--http-requests", type=int, default=6)
    ap.add_argument("--bound-kib", type=int, required=True, help="allowed RSS growth")
    ap.add_argument("--abort-kib", type=int, required=True, help="stop the attack above this growth")
    ap.add_argument("--min-attack-s", type=float, default=6.0)
    ap.add_argument("--max-attack-s", type=float, default=60.0)
    ap.add_argument("--stall-s", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--stall-port", type=int, required=True, help="an HTTP listener with a short preauth_idle_s")
    ap.add_argument("--stall-bound-ms", type=int, required=True)
    ARGS = ap.parse_args()
    CTX = ssl.create_default_context(cafile=ARGS.ca)

    # the reference: an ordinary session on the quiet frontend
    try:
        ref = ordinary_session()
    except Exception as e:
        check(False, "ordinary session before the attack", repr(e))
        return
    ARGS.timeout = max(ARGS.timeout, 20 * ref)
    base = rss_kib(ARGS.fe_pid)
    print("frontend RSS before the attack: %d KiB; ordinary session %.0f ms" % (base, ref * 1000), flush=True)

    attackers = [Mail("pop3 plain", 110, "pop3"), Mail("pop3 STLS", 110, "pop3", "starttls"),
                 Mail("pop3s", 995, "pop3", "implicit"),
                 Mail("imap plain", 143, "imap"), Mail("imap STARTTLS", 143, "imap", "starttls"),
                 Http("http plain 1", 80), Http("http plain 2", 80), Http("https", 443, "implicit")]
    t0 = time.monotonic()
    for a in attackers:
        a.start()
    peak, aborted, during, ordinary = base, False, {}, None
    while True:
        time.sleep(0.05)
        now = time.monotonic()
        peak = max(peak, rss_kib(ARGS.fe_pid))
        if peak - base > ARGS.abort_kib:
            aborted = True
            break
        if any(a.error for a in attackers):
            break
        stalled = all(a.sock is not None and a.stalled_for(now) >= ARGS.stall_s for a in attackers)
        if stalled and ordinary is None:
            # every attacker is held off: an ordinary client must still be served
            ordinary = threading.Thread(target=timed, args=(during,), daemon=True)
            ordinary.start()
        if ordinary is not None and ordinary.is_alive():
            continue
        if (stalled and now - t0 >= ARGS.min_attack_s) or now - t0 >= ARGS.max_attack_s:
            break
    elapsed = time.monotonic() - t0
    for a in attackers:
        a.stop.set()
    for a in attackers:
        a.join(ARGS.timeout)
    growth = peak - base
    print("frontend RSS: before %d KiB, peak %d KiB during %.1f s of attack, growth %d KiB (bound %d KiB)" % (
        base, peak, elapsed, growth, ARGS.bound_kib), flush=True)
    for a in attackers:
        print("  %-14s sent %9d bytes%s" % (a.label, a.sent, " error " + a.error if a.error else ""), flush=True)
    check(not any(a.error for a in attackers), "the 8 attackers connected and sent",
          "; ".join("%s: %s" % (a.label, a.error) for a in attackers if a.error))
    check(not aborted and growth <= ARGS.bound_kib,
          "frontend RSS growth %d KiB within %d KiB with 8 clients that never read" % (growth, ARGS.bound_kib),
          "grew %d KiB in %.1f s%s" % (growth, elapsed, " (attack stopped early)" if aborted else ""))
    if aborted:
        return
    check("s" in during, "an ordinary client is served during the attack (%.0f ms, %.0f ms before it)" % (
        during.get("s", 0) * 1000, ref * 1000), during.get("error", "the attackers never all stalled"))
    # resume: the attackers read now; every command they sent is answered, in order
    results = [{} for a in attackers]
    threads = [threading.Thread(target=a.finish, args=(r,), daemon=True) for a, r in zip(attackers, results)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, r in zip(attackers, results):
        check(r["ok"], "%s reads again: %s (%d bytes in %.0f ms)" % (a.label, r["what"], r.get("bytes", 0), r["ms"]),
              r["what"])
    print("frontend RSS after the attackers read: %d KiB" % rss_kib(ARGS.fe_pid), flush=True)
    stalled_http_is_closed()


if __name__ == "__main__":
    main()
    sys.exit(1 if failures else 0)
