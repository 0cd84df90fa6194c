# Shared helpers for script tests: sourced, not run. Prints PASS/FAIL lines.
ROOT=${ESPROXY_ROOT:-$(pwd)}
ESPROXY=${ESPROXY:-$ROOT/build/esproxy}
failures=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failures=$((failures + 1)); }
finish() { [ "$failures" -eq 0 ]; exit $?; }
# now_ms: monotonic-enough wall clock in milliseconds
now_ms() { date +%s%3N; }
# fe_conf FILE CONTROL UDP_PORT [LINE...]: a frontend on loopback whose
# tunnel peer never answers (enough for everything before login); the
# LINEs follow the tunnel (listeners), $FE_ESPROXY_LINES go into [esproxy].
fe_conf() {
    f=$1 ctl=$2 udp=$3
    shift 3
    printf '[esproxy]\nrole = frontend\ncontrol = %s\n%s\n' "$ctl" "${FE_ESPROXY_LINES:-}" >"$f"
    printf '[tunnel main]\nlocal = 127.0.0.1\npeer = 127.0.0.2\nudp_port = %s\n' "$udp" >>"$f"
    printf 'local_id = fe.test\npeer_id = mail.test\npsk = cli-test-key\n\n' >>"$f"
    printf '%s\n' "$@" >>"$f"
}
# wait_socket PATH: wait up to 10 s for a Unix socket; false if it never came
wait_socket() {
    i=0
    while [ ! -S "$1" ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i + 1)); done
    [ -S "$1" ]
}
