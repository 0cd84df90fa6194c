#!/usr/bin/python3
"""Check a Prometheus text exposition (stdin) with the reference parser.

Run with Debian's /usr/bin/python3 (python3-prometheus-client). Every
family must have HELP and TYPE, counters must be named *_total, no sample
may repeat. On success prints one line per sample,
`name{label="value",...} value` with labels sorted (`name value`
without labels), for the caller to grep;
on any problem prints `invalid: why` and exits 1.
"""
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    text = sys.stdin.read()
    helps, types = set(), {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            types[name] = kind
    if not text.endswith("\n"):
        return "no final newline"
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser raises ValueError and others
        return "parser: %s" % e
    seen, out = set(), []
    for fam in families:
        for s in fam.samples:
            if s.name not in types:
                return "%s has no TYPE" % s.name
            if s.name not in helps:
                return "%s has no HELP" % s.name
            if types[s.name] == "counter" and not s.name.endswith("_total"):
                return "counter %s does not end in _total" % s.name
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in seen:
                return "sample repeated: %s %s" % key
            seen.add(key)
            labels = ",".join('%s="%s"' % kv for kv in sorted(s.labels.items()))
            value = int(s.value) if float(s.value).is_integer() else s.value
            out.append("%s%s %s" % (s.name, "{%s}" % labels if labels else "", value))
    if not out:
        return "no samples"
    print("\n".join(out))
    return None


if __name__ == "__main__":
    why = main()
    if why is not None:
        print("invalid: %s" % why)
        sys.exit(1)
