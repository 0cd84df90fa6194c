#!/bin/sh
# Everything `make test` runs, in order from fast to slow. Each stage runs
# even when an earlier one failed; the closing line sums them all.
set -u
ESPROXY_TEST_COUNTS=$(mktemp)
export ESPROXY_TEST_COUNTS
trap 'rm -f "$ESPROXY_TEST_COUNTS"' EXIT
stages_failed=0
stage() {
    echo
    echo "######## $1"
    shift
    t=$(date +%s)
    "$@" || stages_failed=$((stages_failed + 1))
    echo "(stage time $(( $(date +%s) - t )) s)"
}
rel_tests=$(ls build/rel/tests/test_* 2>/dev/null)
asan_tests=$(ls build/asan/tests/test_* 2>/dev/null)
fuzzers=$(ls build/fuzz/fuzz_* 2>/dev/null)
# shellcheck disable=SC2086
stage "unit tests" sh tests/run-unit.sh $rel_tests
stage "unit tests under ASan+UBSan" env ASAN_OPTIONS=detect_leaks=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 sh tests/run-unit.sh $asan_tests
stage "command line" sh tests/run-scripts.sh tests/cli
[ -d tests/net ] && stage "network (namespaces, tshark)" sh tests/run-scripts.sh tests/net
[ -f tests/interop/uml_interop.sh ] &&
    stage "interop (strongSwan + Linux kernel ESP in user-mode-linux)" sh tests/run-scripts.sh tests/interop/uml_interop.sh
# the frontend and backend roles from the ASan+UBSan build: a sanitizer
# report in any esproxy log fails the stage (tests/lab/lib.sh lab_san_check)
asan=$(pwd)/build/asan/esproxy
stage "failover lab with ESPROXY_BIN=build/asan/esproxy (ASan+UBSan)" \
    env ESPROXY_BIN="$asan" sh tests/run-scripts.sh tests/net/failover_lab.sh
[ -f tests/interop/uml_interop.sh ] && stage "UML crash drill with ESPROXY_BIN=build/asan/esproxy (ASan+UBSan)" \
    env ESPROXY_BIN="$asan" UML_ONLY=crash sh tests/run-scripts.sh tests/interop/uml_interop.sh
[ -d tests/docker ] && stage "docker (podman image build, compose drill)" sh tests/run-scripts.sh tests/docker
[ -d tests/fresh ] &&
    stage "fresh Debian 12 container: make demo, make test-unit (podman)" sh tests/run-scripts.sh tests/fresh
[ -n "$fuzzers" ] && stage "fuzz (bounded)" sh tests/run-fuzz.sh $fuzzers
if [ -d tests/bench ] && ls build/rel/bench/bench_* >/dev/null 2>&1; then
    stage "benchmarks" sh -c 'for b in build/rel/bench/bench_*; do echo "== $b"; "$b" || exit 1; done'
fi
stage "benchmarks in the namespace lab (same-run ratios)" sh tests/run-scripts.sh tests/bench
passed=0 failed=0
while read -r p f; do passed=$((passed + p)); failed=$((failed + f)); done <"$ESPROXY_TEST_COUNTS"
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$stages_failed" -eq 0 ]
