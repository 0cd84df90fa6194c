#!/bin/sh
# README.md's configuration reference is the one generated from the schema,
# and README starts with the two commands.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$ROOT/build/rel/tools/config_reference" >"$T/ref"
awk '/<!-- config-reference:start -->/ {on=1; next} /<!-- config-reference:end -->/ {on=0} on' \
    "$ROOT/README.md" >"$T/readme"
if cmp -s "$T/ref" "$T/readme"; then
    pass "README configuration reference matches the schema"
else
    fail "README configuration reference matches the schema" "run 'make docs'; diff: $(diff "$T/ref" "$T/readme" | head -n 5)"
fi
cmds=$(grep -m 2 '^make ' "$ROOT/README.md" | tr '\n' ' ')
[ "$cmds" = "make demo make test " ] && pass "README starts with make demo, make test" \
    || fail "README starts with make demo, make test" "found: $cmds"
finish
