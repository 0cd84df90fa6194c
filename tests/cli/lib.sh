# Shared helpers for script tests: sourced, not run. Prints PASS/FAIL lines.
ROOT=${ESPROXY_ROOT:-$(pwd)}
ESPROXY=${ESPROXY:-$ROOT/build/esproxy}
failures=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failures=$((failures + 1)); }
finish() { [ "$failures" -eq 0 ]; exit $?; }
# now_ms: monotonic-enough wall clock in milliseconds
now_ms() { date +%s%3N; }
