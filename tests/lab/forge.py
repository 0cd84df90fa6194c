#!/usr/bin/env python3
"""The forged-input lab's two sides (tests/net/forged_lab.sh).

    forge.py send KIND --src A --dst B [--sport N] [--count N] [--over S]
                       [--spi-i HEX --spi-r HEX] [--avoid-spi HEX]
        The attacker: forged UDP datagrams to B:4500 from a raw socket with
        IP_HDRINCL, so A may be any address (a third one, or the VIP's).
        KIND is one of
          esp          ESP-in-UDP on random SPIs (never 0, never --avoid-spi)
          invalid-spi  an unprotected INFORMATIONAL "response" carrying an
                       INVALID_IKE_SPI notify under --spi-i/--spi-r
          sk           an INFORMATIONAL under --spi-i/--spi-r whose SK
                       payload is random bytes (requests and responses,
                       message IDs 0..15), from --sport (not the peer's 4500)
        --count datagrams, spread evenly over --over seconds (0: one burst).
        Prints "sent N".

    forge.py hold HOST DIR [--sessions N] [--user U --password P] [--timeout S]
        The victim: N POP3 and N IMAP sessions through the front-end at
        HOST, logged in (spliced) and kept open. Writes DIR/ready once they
        are. Then, for k = 1, 2, ... until DIR/end appears: waits for
        DIR/go.k (its first line is a label), runs the checks and writes
        DIR/done.k, one line per check:
          ok LABEL: NAME            or    bad LABEL: NAME: why
        for NOOP and STAT on each kept POP3 session, NOOP and a FETCH on
        each kept IMAP session, and a new POP3 and a new IMAP login.
        A session that timed out stays failed in later rounds.
"""
import argparse
import imaplib
import os
import poplib
import random
import socket
import struct
import sys
import time

IKE_PORT = 4500
IKE_INFORMATIONAL = 37
IKE_FLAG_RESPONSE = 0x20
IKE_PL_NOTIFY = 41
IKE_PL_SK = 46
IKE_N_INVALID_IKE_SPI = 4
IKE_PROTO_IKE = 1


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp_ip_packet(src, dst, sport, dport, payload):
    """A whole IPv4 + UDP datagram; the kernel fills in the IP checksum."""
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    ulen = 8 + len(payload)
    pseudo = s + d + struct.pack("!BBH", 0, socket.IPPROTO_UDP, ulen)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    c = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, random.randint(1, 0xFFFF), 0x4000, 64,
                     socket.IPPROTO_UDP, 0, s, d)
    return ip + udp


def ike_header(spi_i, spi_r, next_pl, flags, msg_id, length):
    return struct.pack("!QQBBBBII", spi_i, spi_r, next_pl, 0x20, IKE_INFORMATIONAL, flags, msg_id, length)


def forged_esp(a, i):
    while True:
        spi = random.getrandbits(32)
        if spi != 0 and spi != a.avoid_spi:
            break
    # SPI, sequence, 8-byte IV, ciphertext, 16-byte ICV: all made up
    return struct.pack("!II", spi, i + 1) + os.urandom(8 + 32 + 16)


def forged_invalid_spi(a, i):
    # what a node that lost our SA answers (ike_info_send_invalid_spi): a
    # response from the responder, the notify in clear, no SK payload
    notify = struct.pack("!BBHBBH", 0, 0, 8, IKE_PROTO_IKE, 0, IKE_N_INVALID_IKE_SPI)
    return b"\0\0\0\0" + ike_header(a.spi_i, a.spi_r, IKE_PL_NOTIFY, IKE_FLAG_RESPONSE, i % 16,
                                    28 + len(notify)) + notify


def forged_sk(a, i):
    # an SK payload of the right shape (IV 8, ciphertext 16, ICV 16) that
    # cannot authenticate; requests and responses from the responder side
    body = os.urandom(8 + 16 + 16)
    sk = struct.pack("!BBH", 0, 0, 4 + len(body)) + body
    flags = IKE_FLAG_RESPONSE if i % 2 else 0
    return b"\0\0\0\0" + ike_header(a.spi_i, a.spi_r, IKE_PL_SK, flags, (i // 2) % 16, 28 + len(sk)) + sk


KINDS = {"esp": forged_esp, "invalid-spi": forged_invalid_spi, "sk": forged_sk}


def send(a):
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    make = KINDS[a.kind]
    gap = a.over / a.count if a.count else 0
    t0 = time.monotonic()
    for i in range(a.count):
        sport = a.sport if a.sport else IKE_PORT
        sock.sendto(udp_ip_packet(a.src, a.dst, sport, IKE_PORT, make(a, i)), (a.dst, 0))
        if gap:
            delay = t0 + (i + 1) * gap - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    print("sent %d" % a.count)


# ---- the kept sessions ----

def check(out, label, name, fn):
    try:
        r = fn()
        out.append("ok %s: %s%s" % (label, name, " (%s)" % r if r else ""))
    except Exception as e:     # any failure is the finding: name it
        out.append("bad %s: %s: %s: %s" % (label, name, type(e).__name__, str(e)[:160]))


def pop3_login(a):
    p = poplib.POP3(a.host, 110, timeout=a.timeout)
    p.user(a.user)
    p.pass_(a.password)
    return p


def imap_ok(res, what):
    typ, data = res
    if typ != "OK":
        raise RuntimeError("%s: %s %s" % (what, typ, data))


def imap_login(a):
    m = imaplib.IMAP4(a.host, 143, timeout=a.timeout)
    m.login(a.user, a.password)
    imap_ok(m.select("INBOX"), "SELECT")
    return m


def new_pop3(a):
    p = pop3_login(a)
    n, _ = p.stat()
    p.quit()
    return "%d messages" % n


def new_imap(a):
    m = imap_login(a)
    imap_ok(m.noop(), "NOOP")
    m.logout()


def round_of_checks(a, label, pops, imaps):
    out = []
    for k, p in enumerate(pops):
        check(out, label, "kept pop3 #%d NOOP" % k, lambda: p.noop().decode(errors="replace"))
        check(out, label, "kept pop3 #%d STAT" % k, lambda: "%d messages" % p.stat()[0])
    for k, m in enumerate(imaps):
        check(out, label, "kept imap #%d NOOP" % k, lambda: imap_ok(m.noop(), "NOOP"))
        check(out, label, "kept imap #%d FETCH" % k, lambda: imap_ok(m.fetch("1", "(UID RFC822.SIZE)"), "FETCH"))
    check(out, label, "new pop3 login", lambda: new_pop3(a))
    check(out, label, "new imap login", lambda: new_imap(a))
    return out


def write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def hold(a):
    pops = [pop3_login(a) for _ in range(a.sessions)]
    imaps = [imap_login(a) for _ in range(a.sessions)]
    write_atomic(os.path.join(a.dir, "ready"), "%d pop3, %d imap\n" % (len(pops), len(imaps)))
    k = 1
    while not os.path.exists(os.path.join(a.dir, "end")):
        go = os.path.join(a.dir, "go.%d" % k)
        if not os.path.exists(go):
            time.sleep(0.05)
            continue
        with open(go) as f:
            label = f.readline().strip() or "round %d" % k
        out = round_of_checks(a, label, pops, imaps)
        write_atomic(os.path.join(a.dir, "done.%d" % k), "".join(line + "\n" for line in out))
        k += 1
    for s in pops + imaps:
        try:
            s.quit() if isinstance(s, poplib.POP3) else s.logout()
        except Exception:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("kind", choices=sorted(KINDS))
    s.add_argument("--src", required=True)
    s.add_argument("--dst", required=True)
    s.add_argument("--sport", type=int, default=0)
    s.add_argument("--count", type=int, default=300)
    s.add_argument("--over", type=float, default=0.0)
    s.add_argument("--spi-i", type=lambda x: int(x, 16), default=0)
    s.add_argument("--spi-r", type=lambda x: int(x, 16), default=0)
    s.add_argument("--avoid-spi", type=lambda x: int(x, 16), default=0)
    h = sub.add_parser("hold")
    h.add_argument("host")
    h.add_argument("dir")
    h.add_argument("--sessions", type=int, default=2)
    h.add_argument("--user", default="alice")
    h.add_argument("--password", default="secret123")
    h.add_argument("--timeout", type=float, default=20.0)
    a = ap.parse_args()
    if a.cmd == "send":
        send(a)
    else:
        hold(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
