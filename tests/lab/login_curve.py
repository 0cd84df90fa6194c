#!/usr/bin/env python3
"""Client and analysis side of tests/bench/login_curve.sh.

    login_curve.py login HOST PORT SECONDS CONC     -> one JSON line: IMAP login latencies
    login_curve.py prom FILE                        -> JSON counters from `esproxy status --prometheus`
    login_curve.py history STATUS_JSON FROM_MS TO_MS -> entries into suspect in the window
    login_curve.py table FILE                       -> the concurrency table (JSON lines of the script)
    login_curve.py capture PCAP KEYLOG FE_LOG STALL_MS CURVE_FILE
                                                    -> where a login through the tunnel spends its time,
                                                       and why the tunnel became SUSPECT

`login` runs CONC clients (asyncio, one process) that each loop for
SECONDS: connect, read the greeting, LOGIN, LOGOUT. Each session gives
three times:
  greet  connect -> greeting
  cmd    LOGIN sent -> tagged OK (what Dovecot's imaptest times as "login")
  full   connect -> LOGIN's tagged OK
esproxy greets the client itself and opens its upstream connection only
at LOGIN, so Dovecot's own greeting (an imap-login process, queued behind
the other logins when Dovecot is busy) falls inside "cmd" through esproxy
and before it on a direct connection. "full" is the same work on both
paths.

`capture` decrypts the frontend's ESP capture with the key log (tshark),
splits each IMAP login of the curve's esproxy runs into its phases on the
wire (tunnel connect, Dovecot's greeting, the frontend's turn, the answer
to LOGIN) and, for every liveness stall hint in the frontend's log, looks
at what crossed the wire before the probe the hint sent:
  pure-ack     nothing we sent since the peer's last packet needed an
               answer (pure ACKs, RSTs): the flap fixed in a3372b6
  peer-silent  data, SYN or FIN of ours went unanswered on the wire for
               stall_ms or more (the peer's delayed ACK plus a slow answer)
  late-loop    the peer's last packet reached the wire less than stall_ms
               before the probe: the frontend ran its timer before reading
               it (a late event loop)
The last line is JSON with the counts per kind.
"""
import asyncio
import calendar
import json
import re
import statistics
import subprocess
import sys
import time

USER, PASSWORD = "alice", "secret123"


# ---- the login client ----

async def login_session(host, port, rec):
    t0 = time.perf_counter()
    r, w = await asyncio.open_connection(host, port)
    try:
        greeting = await r.readline()
        t1 = time.perf_counter()
        if not greeting.startswith(b"* OK"):
            raise RuntimeError("greeting %r" % greeting[:60])
        w.write(b"a1 LOGIN %s %s\r\n" % (USER.encode(), PASSWORD.encode()))
        while True:
            line = await r.readline()
            if not line or line.startswith(b"a1 "):
                break
        t2 = time.perf_counter()
        if not line.startswith(b"a1 OK"):
            raise RuntimeError("login %r" % line[:60])
        w.write(b"a2 LOGOUT\r\n")
        while True:
            line = await r.readline()
            if not line or line.startswith(b"a2 "):
                break
    finally:
        w.close()
    rec.append((t1 - t0, t2 - t1, t2 - t0))


async def login_worker(host, port, end, rec, errors):
    while time.perf_counter() < end:
        try:
            await asyncio.wait_for(login_session(host, port, rec), 30)
        except Exception as e:     # counted; the run goes on
            errors.append(str(e)[:80])


def pct(values, p):
    v = sorted(values)
    return round(v[min(len(v) - 1, int(len(v) * p))] * 1e3, 2) if v else None


async def login_run(host, port, seconds, conc):
    rec, errors = [], []
    t0 = time.perf_counter()
    end = t0 + seconds
    await asyncio.gather(*(login_worker(host, port, end, rec, errors) for _ in range(conc)))
    wall = time.perf_counter() - t0
    out = {"logins": len(rec), "errors": len(errors), "wall_s": round(wall, 3),
           "rate": round(len(rec) / wall, 2)}
    for i, k in enumerate(("greet", "cmd", "full")):
        out[k + "_p50_ms"] = pct([x[i] for x in rec], 0.5)
        out[k + "_p90_ms"] = pct([x[i] for x in rec], 0.9)
    if errors:
        out["first_error"] = errors[0]
    print(json.dumps(out))


# ---- esproxy status ----

def prom(path):
    """The counters compared before and after a run, from `status --prometheus`."""
    out = {"suspect_entered": 0, "held_total": 0, "held_failed": 0, "waiting": 0}
    keys = {"esproxy_tunnel_state_entered_total": "suspect_entered", "esproxy_sessions_held_total": "held_total",
            "esproxy_sessions_held_failed_total": "held_failed", "esproxy_sessions_waiting": "waiting"}
    for line in open(path):
        m = re.match(r'(\w+)\{([^}]*)\} (\S+)', line)
        if not m or m.group(1) not in keys:
            continue
        if m.group(1) == "esproxy_tunnel_state_entered_total" and 'state="suspect"' not in m.group(2):
            continue
        out[keys[m.group(1)]] += int(float(m.group(3)))
    return out


def history(path, t_from, t_to):
    """Entries into suspect in [t_from, t_to] ms from `status --json`; the
    ring keeps the last 64 events, so a full ring only gives a floor."""
    d = json.load(open(path))
    n = ring = 0
    for t in d.get("tunnels", []):
        h = t.get("history", [])
        ring = max(ring, len(h))
        n += sum(1 for e in h if e["to"] == "suspect" and t_from <= e["at_ms"] <= t_to)
    return {"suspect": n, "ring_full": ring >= 64, "held_now": d.get("held", 0)}


def run_status(r):
    """What esproxy did during one run of the curve (the script's files)."""
    f = r["files"]
    p0, p1 = prom(f + ".prom0"), prom(f + ".prom1")
    h = history(f + ".status", r["t0"], r["t1"])
    return dict(h, suspect_counter=p1["suspect_entered"] - p0["suspect_entered"],
                held=p1["held_total"] - p0["held_total"])


# ---- the table ----

def table(path):
    rows = [json.loads(l) for l in open(path)]
    med = statistics.median
    levels = sorted({r["level"] for r in rows})
    by = {}
    for r in rows:
        by.setdefault(r["level"], {}).setdefault(r["round"], {})[r["path"]] = r
    names = {"d": "direct", "e": "esproxy", "h": "HAProxy"}

    def val(lv, p, k):
        v = [rd[p]["m"][k] for rd in by[lv].values() if p in rd and rd[p]["m"].get(k) is not None]
        return med(v) if v else None

    def ratio(lv, p, k):
        v = [rd[p]["m"][k] / rd["d"]["m"][k] for rd in by[lv].values()
             if p in rd and "d" in rd and rd[p]["m"].get(k) and rd["d"]["m"].get(k)]
        return med(v) if v else None

    def f(x, w=7, d=1):
        return ("%*.*f" % (w, d, x)) if x is not None else "%*s" % (w, "-")

    print("IMAP login, connect -> LOGIN OK (the same Dovecot work on every path), ms; ratio = path / same-run direct"
          " (median of %d rounds)" % len(next(iter(by.values()))))
    print("  conc |  direct p50   p90 | esproxy p50   p90  ratio | HAProxy p50   p90  ratio | logins/s d / e / h")
    for lv in levels:
        print("  %4d | %s %s | %s %s %s | %s %s %s | %s %s %s" % (
            lv, f(val(lv, "d", "full_p50_ms"), 11), f(val(lv, "d", "full_p90_ms"), 5, 0),
            f(val(lv, "e", "full_p50_ms"), 11), f(val(lv, "e", "full_p90_ms"), 5, 0), f(ratio(lv, "e", "full_p50_ms"), 6, 2),
            f(val(lv, "h", "full_p50_ms"), 11), f(val(lv, "h", "full_p90_ms"), 5, 0), f(ratio(lv, "h", "full_p50_ms"), 6, 2),
            f(val(lv, "d", "rate"), 6), f(val(lv, "e", "rate"), 5), f(val(lv, "h", "rate"), 5)))
    print("IMAP LOGIN command alone (imaptest's \"login\": LOGIN sent -> OK), ms, and what esproxy did meanwhile")
    print("  conc |  direct p50   p90 | esproxy p50   p90  ratio | HAProxy p50  ratio | greeting p50 d / e | "
          "SUSPECT held | esproxy per login: CPU, run-queue wait")
    total_sus = total_held = 0
    for lv in levels:
        es = [rd["e"] for rd in by[lv].values() if "e" in rd]
        st = [run_status(r) for r in es]
        sus = sum(x["suspect"] for x in st)
        # the history ring (64 events) may have lost some: the counter is exact
        floor = "" if sum(x["suspect_counter"] for x in st) == sus else "(%d)" % sum(x["suspect_counter"] for x in st)
        held = sum(x["held"] for x in st)
        total_sus += sum(x["suspect_counter"] for x in st)
        total_held += held
        logins = sum(r["m"]["logins"] for r in es)
        cpu = sum(r.get("cpu_s", 0) for r in es)
        wait = sum(r.get("wait_s", 0) for r in es)
        print("  %4d | %s %s | %s %s %s | %s %s | %s %s | %7s %4d | %s ms, %s ms" % (
            lv, f(val(lv, "d", "cmd_p50_ms"), 11), f(val(lv, "d", "cmd_p90_ms"), 5, 0),
            f(val(lv, "e", "cmd_p50_ms"), 11), f(val(lv, "e", "cmd_p90_ms"), 5, 0), f(ratio(lv, "e", "cmd_p50_ms"), 6, 2),
            f(val(lv, "h", "cmd_p50_ms"), 11), f(ratio(lv, "h", "cmd_p50_ms"), 6, 2),
            f(val(lv, "d", "greet_p50_ms"), 12), f(val(lv, "e", "greet_p50_ms"), 4),
            "%d%s" % (sus, floor), held, f(cpu * 1e3 / logins if logins else None, 5, 2),
            f(wait * 1e3 / logins if logins else None, 5, 2)))
    # the verdict's input: geometric mean over levels of esproxy / HAProxy (full p50)
    g = [val(lv, "e", "full_p50_ms") / val(lv, "h", "full_p50_ms") for lv in levels
         if val(lv, "e", "full_p50_ms") and val(lv, "h", "full_p50_ms")]
    errors = sum(r["m"]["errors"] for r in rows)
    first = next((r["m"]["first_error"] for r in rows if r["m"].get("first_error")), "")
    print(json.dumps({"esproxy_vs_haproxy_full_p50_geomean": round(statistics.geometric_mean(g), 3) if g else None,
                      "errors": errors, "first_error": first,
                      "suspect": total_sus, "held": total_held}))


# ---- why the tunnel became SUSPECT ----

def decrypt(pcap, keylog):
    args = ["tshark", "-r", pcap, "-o", "esp.enable_encryption_decode:TRUE",
            "-o", "esp.enable_authentication_check:TRUE", "-o", "tcp.desegment_tcp_streams:FALSE",
            "-o", "tcp.analyze_sequence_numbers:FALSE"]
    for line in open(keylog):
        line = line.strip()
        if line.startswith("uat:esp_sa:") or line.startswith("uat:ikev2_decryption_table:"):
            args += ["-o", line]
    args += ["-T", "fields", "-E", "separator=|", "-e", "frame.time_epoch", "-e", "ip.src", "-e", "tcp.srcport",
             "-e", "tcp.dstport", "-e", "tcp.flags", "-e", "tcp.len", "-e", "isakmp.exchangetype",
             "-e", "isakmp.flag_r"]
    r = subprocess.run(args, capture_output=True, text=True)
    pkts = []
    for line in r.stdout.splitlines():
        t, src, sp, dp, fl, ln, ex, resp = (line.split("|") + [""] * 8)[:8]
        pkts.append({"t": float(t), "src": src.split(",")[0], "sport": sp.split(",")[-1], "dport": dp.split(",")[-1],
                     "flags": int(fl.split(",")[-1], 16) if fl else None, "len": int(ln.split(",")[-1] or 0) if ln else 0,
                     "ike": ex.split(",")[0], "resp": resp.split(",")[0] in ("1", "True")})
    return pkts


def wants_answer(p):
    """netstack_wants_answer(): data, SYN or FIN; not a pure ACK or RST."""
    if p["flags"] is None:
        return False
    if p["flags"] & 0x03:
        return True
    if p["flags"] & 0x04:
        return False
    return p["len"] > 0


def breakdown(pkts, curve):
    """Where an IMAP login through the tunnel spends its time, per level of
    the curve: from the frontend's decrypted ESP, each inner stream to port
    143 opened during an esproxy run of that level."""
    fe = "10.99.2.10"
    streams, open_ = [], {}
    for p in pkts:
        if p["flags"] is None:
            continue
        mine = p["src"] == fe
        port = p["sport"] if mine else p["dport"]
        if (p["dport"] if mine else p["sport"]) != "143":
            continue
        if mine and p["flags"] & 0x02:
            open_[port] = {"syn": p["t"]}
            streams.append(open_[port])
            continue
        st = open_.get(port)
        if st is None:
            continue
        if not mine and p["flags"] & 0x02:
            st.setdefault("synack", p["t"])
        elif not mine and p["len"] > 0 and "login" not in st:
            st.setdefault("greet", p["t"])
        elif mine and p["len"] > 0 and "greet" in st:
            st.setdefault("login", p["t"])
        elif not mine and p["len"] > 0 and "login" in st:
            st.setdefault("ok", p["t"])
    runs = {}
    for line in open(curve):
        r = json.loads(line)
        if r["path"] == "e" and "t0" in r:
            runs.setdefault(r["level"], []).append((r["t0"] / 1e3, r["t1"] / 1e3))
    phases = (("synack", "syn", "tunnel connect"), ("greet", "synack", "Dovecot greeting"),
              ("login", "greet", "frontend: greeting -> LOGIN"), ("ok", "login", "LOGIN -> answer"))
    print("IMAP login through the tunnel, from the frontend's decrypted ESP capture: p50 (p90) ms of each phase")
    print("  conc | streams | " + " | ".join(p[2] for p in phases))
    for lv in sorted(runs):
        sel = [st for st in streams if all(k in st for k in ("synack", "greet", "login", "ok"))
               and any(a <= st["syn"] <= b for a, b in runs[lv])]
        cells = []
        for a, b, name in phases:
            v = [st[a] - st[b] for st in sel]
            cells.append(("%.1f (%.1f)" % (pct(v, 0.5), pct(v, 0.9)) if v else "-").rjust(len(name)))
        print("  %4d | %7d | %s" % (lv, len(sel), " | ".join(cells)))


def capture(pcap, keylog, fe_log, stall_ms, curve):
    """Decrypt once: the login breakdown, then the stalls."""
    pkts = decrypt(pcap, keylog)
    breakdown(pkts, curve)
    stalls(pkts, fe_log, stall_ms)


def stalls(pkts, fe_log, stall_ms):
    stall_ms = float(stall_ms)
    hints = []
    for line in open(fe_log):
        if "event=liveness_hint hint=stall" in line:
            m = re.match(r"ts=(\d+-\d+-\d+T\d+:\d+:\d+\.\d+)Z", line)
            if m:
                hints.append(calendar.timegm(time.strptime(m.group(1)[:19], "%Y-%m-%dT%H:%M:%S")) +
                             float("0" + m.group(1)[19:]))
    fe = "10.99.2.10"
    kinds = {"pure-ack": 0, "peer-silent": 0, "late-loop": 0, "unmatched": 0}
    silent = []
    for h in hints:
        # the probe the hint sent: our first INFORMATIONAL request at or after it
        pi = next((i for i, p in enumerate(pkts) if p["src"] == fe and p["ike"] == "37" and not p["resp"]
                   and h - 0.002 <= p["t"] <= h + 0.05), None)
        if pi is None:
            kinds["unmatched"] += 1
            print("  stall at %.3f: no probe in the capture" % h)
            continue
        tp = pkts[pi]["t"]
        li = max((i for i in range(pi) if pkts[i]["src"] != fe), default=None)
        t_last = pkts[li]["t"] if li is not None else 0.0
        sent = [p for p in pkts[(li + 1 if li is not None else 0):pi] if p["src"] == fe and p["flags"] is not None]
        waiting = [p for p in sent if wants_answer(p)]
        if (tp - t_last) * 1e3 < stall_ms - 2:
            kinds["late-loop"] += 1
            print("  stall at %.3f: the peer's last packet reached the wire %.0f ms before, less than stall_ms: the "
                  "frontend ran its timer before reading it (late-loop)" % (tp, (tp - t_last) * 1e3))
            continue
        if not waiting:
            kinds["pure-ack"] += 1
            print("  stall at %.3f: peer's last packet %.0f ms before; since then we sent only %d pure ACK/RST "
                  "(pure-ack)" % (tp, (tp - t_last) * 1e3, len(sent)))
            continue
        w0 = waiting[0]
        kinds["peer-silent"] += 1
        # the same stream's next packet from the peer: delayed ACK or answer
        nxt = next((p for p in pkts[pi:] if p["src"] != fe and p["sport"] == w0["dport"] and p["dport"] == w0["sport"]),
                   None)
        what = "none" if nxt is None else ("pure ACK" if nxt["len"] == 0 and not (nxt["flags"] or 0) & 0x03
                                           else "%d bytes" % nxt["len"])
        after = (nxt["t"] - w0["t"]) * 1e3 if nxt else None
        silent.append(after)
        print("  stall at %.3f: we sent %d bytes to port %s (flags 0x%02x) %.0f ms before (%.2f ms after the peer's "
              "last packet), nothing came back since; the peer's next packet on that stream: %s, %s ms after our "
              "send (peer-silent)" % (tp, w0["len"], w0["dport"], w0["flags"], (tp - w0["t"]) * 1e3,
                                      (w0["t"] - t_last) * 1e3, what, "%.0f" % after if after is not None else "-"))
    print(json.dumps(dict(kinds, hints=len(hints), packets=len(pkts))))


def main():
    cmd = sys.argv[1]
    if cmd == "login":
        asyncio.run(login_run(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])))
    elif cmd == "prom":
        print(json.dumps(prom(sys.argv[2])))
    elif cmd == "history":
        print(json.dumps(history(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    elif cmd == "table":
        table(sys.argv[2])
    elif cmd == "capture":
        capture(*sys.argv[2:7])


if __name__ == "__main__":
    main()
