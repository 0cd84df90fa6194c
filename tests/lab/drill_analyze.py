#!/usr/bin/env python3
"""Figures of one failover drill from the session log of sessions.py.

    drill_analyze.py SESSIONS.jsonl ACTION_MS VIP_MS DEAD_AFTER_MS [--json]

Prints key=value figures (or one JSON object):
  recovery_ms       action -> end of the first successful session started after it
  from_vip_ms       VIP arrival on the new node -> that same moment ("none" when
                    unknown; slightly negative when the VIP's timestamp, taken by
                    keepalived's notify script after the address is up, lags)
  inflight          sessions running at the action
  inflight_late     ... that hung: failed later than dead_after, or succeeded
                    later than the recovery plus the slowest other successful
                    session (a login caught by the failover starts over and
                    is held), plus the p90 of its protocol's sessions, at
                    least session_p90_ms (errors and resumed sessions run as
                    slowly as sessions run on this machine now) plus 1 s
                    after the action
  inflight_late_detail  the first three of those (times from the action)
  inflight_failed   ... that failed (POP3/IMAP errors after the login are expected)
  http_inflight_failed  idempotent HTTP GETs in flight that failed (should be 0: retried)
  new_failed        sessions started after the action that failed (should be 0: held)
  new_total         sessions started after the action
  first_free_ms     when the first client busy at the action was free again
                    (its session ended), from the action; a looping client
                    can start no new session before that
  max_new_session_ms  the longest session started after the action (held
                    sessions last until the recovery)
  session_p90_ms    90th percentile duration of the successful sessions that
                    ended before the action or started after the recovery (not
                    touched by the failover): this run's reference for how long
                    one session takes on this machine now (failover bounds add
                    it to what the configuration allows, so a busy machine does
                    not fail them)
"""
import json
import sys


def p90(values):
    values = sorted(values)
    return values[min(len(values) - 1, len(values) * 9 // 10)] if values else 0


def main():
    path, action, vip, dead = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    recs = [json.loads(l) for l in open(path) if l.strip()]
    after = [r for r in recs if r["start"] >= action]
    ok_after = sorted(r["end"] for r in after if r["ok"])
    first_ok = ok_after[0] if ok_after else None
    inflight = [r for r in recs if r["start"] < action < r["end"]]
    # a resumed session may take, after the recovery, as long as the slowest
    # successful session that was not caught by the failover
    slowest = max((r["end"] - r["start"] for r in recs if r["ok"] and r not in inflight), default=0)
    ref = p90([r["end"] - r["start"] for r in recs
               if r["ok"] and (r["end"] < action or (first_ok and r["start"] > first_ok))])
    # an error travels to a client, and a resumed session runs after the
    # recovery, as slowly as sessions run on this machine now (ref: p90)
    def proto_ref(proto):   # this protocol's p90 (a POP3 login in UML takes seconds, HTTP ms)
        return max(ref, p90([r["end"] - r["start"] for r in recs if r["proto"] == proto and r["ok"] and
                             (r["end"] < action or (first_ok and r["start"] > first_ok))]))
    late = [r for r in inflight if r["end"] - action > (
        max(dead, first_ok - action if first_ok else 0) + slowest if r["ok"] else dead) + proto_ref(r["proto"]) + 1000]
    out = {
        "sessions": len(recs),
        "recovery_ms": first_ok - action if first_ok else -1,
        "from_vip_ms": first_ok - vip if first_ok and vip > 0 else "none",
        "inflight": len(inflight),
        "inflight_late": len(late),
        "inflight_failed": sum(1 for r in inflight if not r["ok"]),
        "http_inflight_failed": sum(1 for r in inflight if r["proto"] == "http" and not r["ok"]),
        "new_total": len(after),
        "new_failed": sum(1 for r in after if not r["ok"]),
        "max_session_ms": max((r["end"] - r["start"] for r in recs), default=0),
        "max_new_session_ms": max((r["end"] - r["start"] for r in after), default=0),
        "first_free_ms": min((r["end"] for r in inflight), default=action) - action,
        "session_p90_ms": ref,
    }
    out["inflight_late_detail"] = json.dumps([
        {"proto": r["proto"], "start": r["start"] - action, "end": r["end"] - action, "ok": r["ok"],
         "err": r.get("err", "")[:60]} for r in late[:3]])
    errors = {}
    for r in recs:
        if not r["ok"]:
            errors[r["proto"] + ": " + r["err"][:60]] = errors.get(r["proto"] + ": " + r["err"][:60], 0) + 1
    out["errors"] = errors
    if "--json" in sys.argv:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print("%s=%s" % (k, v if k != "errors" else json.dumps(v)))


if __name__ == "__main__":
    main()
