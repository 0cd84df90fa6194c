#!/usr/bin/env python3
"""An IKE_SA_INIT flood sender (tests/net/ike_flood_lab.sh).

    ike_flood.py --src A --dst B [--rate N] [--seconds S] [--stop FILE]

Sends IKE_SA_INIT requests to B:4500 (non-ESP marker, RFC 3948) from an
ordinary UDP socket bound to A (its own address, any port), N a second
(default 400), each under a fresh random SPI_i with a valid proposal
(aes128gcm16-prfsha256-x25519), a random X25519 key share and nonce; it
never answers a COOKIE or sends IKE_AUTH. Stops after S seconds or when
FILE appears, whichever is first. Counts the datagrams that come back and
prints one line of JSON:
    {"sent": .., "replies": .., "cookies": .., "seconds": .., "replies_per_s": ..}
"""
import argparse
import json
import os
import select
import socket
import struct
import time

IKE_SA_INIT = 34
PL_SA, PL_KE, PL_NONCE, PL_NOTIFY = 33, 34, 40, 41
N_COOKIE = 16390


def payload(next_pl, body):
    return struct.pack("!BBH", next_pl, 0, 4 + len(body)) + body


def transform(last, ttype, tid, attrs=b""):
    return struct.pack("!BBHBBH", 0 if last else 3, 0, 8 + len(attrs), ttype, 0, tid) + attrs


def init_request():
    ts = (transform(False, 1, 20, struct.pack("!HH", 0x800E, 128)) +   # ENCR_AES_GCM_16, 128-bit key
          transform(False, 2, 5) +                                      # PRF_HMAC_SHA2_256
          transform(True, 4, 31))                                       # DH curve25519
    prop = struct.pack("!BBHBBBB", 0, 0, 8 + len(ts), 1, 1, 0, 3) + ts
    body = (payload(PL_KE, prop) +
            payload(PL_NONCE, struct.pack("!HH", 31, 0) + os.urandom(32)) +
            payload(0, os.urandom(32)))
    hdr = struct.pack("!8s8sBBBBII", os.urandom(8), bytes(8), PL_SA, 0x20, IKE_SA_INIT, 0x08, 0, 28 + len(body))
    return hdr + body


def is_cookie(msg):
    """An IKE_SA_INIT response whose first payload is a COOKIE notify."""
    if len(msg) < 28 + 8 or msg[16] != PL_NOTIFY or msg[18] != IKE_SA_INIT:
        return False
    return struct.unpack("!H", msg[28 + 6:28 + 8])[0] == N_COOKIE


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", required=True)
    ap.add_argument("--rate", type=float, default=400)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--stop")
    a = ap.parse_args()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.src, 0))
    s.setblocking(False)
    sent = replies = cookies = 0
    t0 = time.monotonic()
    while True:
        now = time.monotonic() - t0
        if now >= a.seconds or (a.stop and os.path.exists(a.stop)):
            break
        while sent < a.rate * now:
            try:
                s.sendto(b"\0\0\0\0" + init_request(), (a.dst, 4500))
            except (BlockingIOError, ConnectionRefusedError):
                pass
            sent += 1
        r, _, _ = select.select([s], [], [], 0.005)
        while r:
            try:
                msg = s.recv(65535)
            except (BlockingIOError, ConnectionRefusedError):
                break
            replies += 1
            cookies += is_cookie(msg[4:]) if msg[:4] == b"\0\0\0\0" else 0
    secs = time.monotonic() - t0
    print(json.dumps({"sent": sent, "replies": replies, "cookies": cookies, "seconds": round(secs, 3),
                      "replies_per_s": round(replies / secs, 1) if secs > 0 else 0}))


if __name__ == "__main__":
    main()
