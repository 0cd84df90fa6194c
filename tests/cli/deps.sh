#!/bin/sh
# `make deps` provides every program the scripts run: tests/cli/deps_scan.py
# finds the commands tests/**/*.sh and mk/*.sh call and maps each to the
# Debian package that owns it, which must be in mk/deps.sh's lists (or their
# dependencies) or in the scanner's small base-system allowlist. First a
# fixture proves the scanner finds what it must and skips what it must.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
command -v python3 >/dev/null 2>&1 || { fail "deps: prerequisites" "python3 not found (make deps)"; finish; }

# ---- the fixture: a tree with one script and a package list ----
mkdir -p "$T/tree/mk" "$T/tree/tests/x"
printf 'BUILD_PKGS="curl"\n' >"$T/tree/mk/deps.sh"
cat >"$T/tree/tests/x/lib.sh" <<'EOF'
in_ns() { ns=$1; shift; ip netns exec "$ns" "$@"; }
helper() { echo "$@"; }
EOF
cat >"$T/tree/tests/x/t.sh" <<'EOF'
. "$ROOT/tests/x/lib.sh"
# esproxy_fx_comment in a comment
esproxy_fx_plain -a >/dev/null 2>&1
out=$(timeout -s KILL 5 esproxy_fx_subst "x" | sort)
in_ns lab-fe esproxy_fx_wrapped --opt
[ -n "$out" ] && VAR=1 env A=b esproxy_fx_env || helper esproxy_fx_not_a_command
sh -c 'esproxy_fx_shell_c; true'
if esproxy_fx_if; then :; fi
case $out in a) esproxy_fx_case ;; *) : ;; esac
for c in esproxy_fx_probe; do command -v "$c" >/dev/null; done
cat >"$T/conf" <<EOT
esproxy_fx_heredoc
EOT
echo "esproxy_fx_in_a_string $(date)"
"$ROOT/build/esproxy" run
curl -s http://127.0.0.1/ | sed -n 1p
EOF
python3 "$ROOT/tests/cli/deps_scan.py" "$T/tree" >"$T/fx.out" 2>&1
rc=$?
got=$(sed -n 's/^FAIL deps: \(esproxy_fx_[a-z_]*\) .*/\1/p' "$T/fx.out" | sort | tr '\n' ' ')
want="esproxy_fx_case esproxy_fx_env esproxy_fx_if esproxy_fx_plain esproxy_fx_probe esproxy_fx_shell_c esproxy_fx_subst esproxy_fx_wrapped "
# ip (iproute2, installed here) is not in the fixture's list; curl is, sed is base
others=$(grep '^FAIL deps: [^e]' "$T/fx.out" | cut -d' ' -f3 | tr '\n' ' ')
if [ "$rc" = 1 ] && [ "$got" = "$want" ] && [ "$others" = "ip " ] &&
        grep -q '^FAIL deps: ip (tests/x/lib.sh:1): from package iproute2, which mk/deps.sh does not install' "$T/fx.out"; then
    pass "deps: the scanner finds commands in every position, skips comments, heredocs, strings, arguments, functions, and fails a package outside the lists"
else
    fail "deps: scanner fixture" "rc=$rc, flagged: $got; expected: $want; output: $(cat "$T/fx.out")"
fi

# ---- the real tree ----
python3 "$ROOT/tests/cli/deps_scan.py" "$ROOT" >"$T/out" 2>&1
rc=$?
cat "$T/out"
if [ "$rc" != 0 ]; then
    grep -q '^FAIL ' "$T/out" && failures=$((failures + 1)) || fail "deps: scan" "exited $rc"
fi
finish
