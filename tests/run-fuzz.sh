#!/bin/sh
# Run each libFuzzer harness for a bounded time (FUZZ_SECONDS, default 20)
# from its seed corpus under tests/fuzz/corpus/<name>/ (kept in the
# repository). An input that runs longer than FUZZ_TIMEOUT seconds
# (default 25) is a hang and fails the run. What a run finds stays in
# build/fuzz/work/<name>/, where the next run starts from. FUZZ_MERGE=1
# merges it into the repository's corpus (libFuzzer -merge=1, by features:
# ten minutes of fuzz_ike_sequence added 713 files, so review before
# committing; the repository keeps small hand-made seeds).
set -u
secs=${FUZZ_SECONDS:-20}
hang=${FUZZ_TIMEOUT:-25}
passed=0 failed=0
for f in "$@"; do
    name=$(basename "$f")
    work=build/fuzz/work/$name
    mkdir -p "$work"
    seeds=tests/fuzz/corpus/$name
    [ -d "$seeds" ] || seeds=
    if "$f" -max_total_time="$secs" -timeout="$hang" -rss_limit_mb=2048 -print_final_stats=1 \
         -artifact_prefix="$work/" "$work" $seeds >"$work/log" 2>&1; then
        echo "PASS fuzz $name: $(grep -m1 'stat::number_of_executed_units' "$work/log" | awk '{print $2}') runs in ${secs}s"
        passed=$((passed + 1))
        if [ "${FUZZ_MERGE:-0}" = 1 ] && [ -n "$seeds" ]; then
            before=$(ls "$seeds" | wc -l)
            "$f" -merge=1 -timeout="$hang" -rss_limit_mb=2048 "$seeds" "$work" >"$work/merge.log" 2>&1 ||
                echo "fuzz $name: merge failed, see $work/merge.log"
            echo "     corpus $seeds: $before -> $(ls "$seeds" | wc -l) files"
        fi
    else
        echo "FAIL fuzz $name: see $work/log"; tail -n 30 "$work/log"
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ -n "${ESPROXY_TEST_COUNTS:-}" ] && echo "$passed $failed" >>"$ESPROXY_TEST_COUNTS"
[ "$failed" -eq 0 ]
