#!/bin/sh
# Independent check of esproxy's ESP: real ESP-in-UDP produced by
# build/rel/tools/esp_traffic (ipsec/esp + ipsec/udp_encap) between two
# addresses on the loopback of a network namespace created here
# (10.99.77.1 <-> 10.99.77.2, UDP 4500), captured with tcpdump, and
# decrypted by tshark using only the key log esproxy wrote (LAB.md §4).
# For each algorithm tshark supports (AES-GCM-16 with 128- and 256-bit
# keys; Wireshark 4.0 has no ESP ChaCha20-Poly1305 and no ESN), every ESP
# packet must show esp.icv_good == 1 and esp.protocol == 6, and its inner
# TCP payload must equal what the tool sent for that SPI and sequence.
# Prints one PASS/FAIL line per check; exits non-zero on any failure.
set -u
root=${ESPROXY_ROOT:-$(pwd)}
tool=$root/build/rel/tools/esp_traffic
count=${ESP_TSHARK_COUNT:-40}
ns=esproxy-esp-$$
work=$(mktemp -d /tmp/esproxy-esp-tshark.XXXXXX)
dump_pid=
failed=0

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failed=1; }

cleanup() {
    if [ -n "$dump_pid" ]; then kill "$dump_pid" 2>/dev/null; wait "$dump_pid" 2>/dev/null; fi
    ip netns del "$ns" 2>/dev/null
    [ -n "${ESP_TSHARK_KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT INT TERM

if [ ! -x "$tool" ]; then
    fail esp_tshark.tool "missing $tool (make build/rel/tools/esp_traffic)"
    exit 1
fi
for t in tshark tcpdump ip; do
    command -v "$t" >/dev/null 2>&1 || { fail esp_tshark.deps "$t not installed (make deps)"; exit 1; }
done
if ! ip netns add "$ns" 2>"$work/err"; then
    fail esp_tshark.netns "cannot create namespace: $(cat "$work/err")"
    exit 1
fi
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" ip addr add 10.99.77.1/32 dev lo
ip netns exec "$ns" ip addr add 10.99.77.2/32 dev lo

# capture_start FILE: tcpdump on the namespace loopback, wait until ready.
capture_start() {
    ip netns exec "$ns" tcpdump -i lo -U --immediate-mode -s 2048 -B 8192 -n -w "$1" udp port 4500 2>"$work/tcpdump.err" &
    dump_pid=$!
    i=0
    while [ $i -lt 50 ] && ! grep -q 'listening on' "$work/tcpdump.err" 2>/dev/null; do
        sleep 0.1; i=$((i + 1))
    done
}

capture_stop() {
    sleep 0.3
    kill -INT "$dump_pid" 2>/dev/null
    wait "$dump_pid" 2>/dev/null
    dump_pid=
    # A capture that lost packets would make the checks below lie.
    if grep -q '[1-9][0-9]* packets dropped by kernel' "$work/tcpdump.err"; then
        fail "esp_tshark.$alg.capture" "$(grep dropped "$work/tcpdump.err")"
    fi
}

# decrypt ALG: tshark with one -o per key log record.
decrypt() {
    set -- -r "$work/$1.pcap" -o esp.enable_encryption_decode:TRUE \
        -o esp.enable_authentication_check:TRUE -o tcp.desegment_tcp_streams:FALSE
    while IFS= read -r line; do
        case $line in uat:esp_sa:*) set -- "$@" -o "$line" ;; esac
    done <"$work/$alg.keys"
    tshark "$@" -Y esp -T fields -E separator=' ' -e esp.spi -e esp.sequence \
        -e esp.protocol -e esp.icv_good -e udp.checksum -e tcp.payload \
        >"$work/$alg.fields" 2>"$work/$alg.tshark.err"
}

check_alg() {
    alg=$1
    capture_start "$work/$alg.pcap"
    if ! ip netns exec "$ns" "$tool" --a 10.99.77.1 --b 10.99.77.2 --alg "$alg" \
            --count "$count" --keylog "$work/$alg.keys" --expect "$work/$alg.expect" \
            >"$work/$alg.out" 2>&1; then
        capture_stop
        fail "esp_tshark.$alg.traffic" "$(tail -n 3 "$work/$alg.out" | tr '\n' ' ')"
        return
    fi
    capture_stop
    pass "esp_tshark.$alg.traffic ($(cat "$work/$alg.out"))"

    mode=$(stat -c %a "$work/$alg.keys")
    [ "$mode" = 600 ] && pass "esp_tshark.$alg.keylog_mode_0600" \
        || fail "esp_tshark.$alg.keylog_mode_0600" "mode $mode"

    if ! decrypt "$alg"; then
        fail "esp_tshark.$alg.tshark" "$(head -n 3 "$work/$alg.tshark.err")"
        return
    fi
    want=$(wc -l <"$work/$alg.expect")
    got=$(wc -l <"$work/$alg.fields")
    [ "$got" -eq "$want" ] && [ "$want" -eq $((2 * count)) ] \
        && pass "esp_tshark.$alg.packet_count ($got ESP packets captured)" \
        || fail "esp_tshark.$alg.packet_count" "captured $got, sent $want"

    bad=$(awk '$4 != 1' "$work/$alg.fields" | wc -l)
    [ "$bad" -eq 0 ] && [ "$got" -gt 0 ] && pass "esp_tshark.$alg.icv_good (all $got)" \
        || fail "esp_tshark.$alg.icv_good" "$bad packets without esp.icv_good == 1"

    bad=$(awk '$3 != 6' "$work/$alg.fields" | wc -l)
    [ "$bad" -eq 0 ] && [ "$got" -gt 0 ] && pass "esp_tshark.$alg.protocol_tcp (all $got)" \
        || fail "esp_tshark.$alg.protocol_tcp" "$bad packets with esp.protocol != 6"

    bad=$(awk '$5 != "0x0000" && $5 != "0x00000000"' "$work/$alg.fields" | wc -l)
    [ "$bad" -eq 0 ] && [ "$got" -gt 0 ] && pass "esp_tshark.$alg.udp_checksum_zero (RFC 3948 2.1)" \
        || fail "esp_tshark.$alg.udp_checksum_zero" "$bad packets with a non-zero UDP checksum"

    # Inner payload per (SPI, sequence): what tshark decrypted vs what was sent.
    awk '{ printf "%s %s %s\n", tolower($1), $2, tolower($3) }' "$work/$alg.expect" \
        | sort >"$work/$alg.want"
    awk '{ p = $6; gsub(":", "", p); printf "%s %s %s\n", tolower($1), $2, tolower(p) }' \
        "$work/$alg.fields" | sort >"$work/$alg.got"
    if cmp -s "$work/$alg.want" "$work/$alg.got"; then
        pass "esp_tshark.$alg.inner_payload_matches ($want payloads)"
    else
        fail "esp_tshark.$alg.inner_payload_matches" \
            "$(diff "$work/$alg.want" "$work/$alg.got" | grep -c '^[<>]') lines differ"
    fi

    # Negative control: one wrong key nibble (the salt's last) per SA must
    # turn every ICV bad, or the checks above prove nothing.
    awk -F'"' -v OFS='"' '/^uat:esp_sa:/ {
        k = $12; c = substr(k, length(k), 1)
        $12 = substr(k, 1, length(k) - 1) (c == "0" ? "1" : "0") } { print }' \
        "$work/$alg.keys" >"$work/$alg.keys.bad"
    mv "$work/$alg.keys" "$work/$alg.keys.good"
    mv "$work/$alg.keys.bad" "$work/$alg.keys"
    decrypt "$alg"
    good=$(awk '$4 == 1' "$work/$alg.fields" | wc -l)
    total=$(wc -l <"$work/$alg.fields")
    [ "$good" -eq 0 ] && [ "$total" -gt 0 ] && pass "esp_tshark.$alg.wrong_key_rejected ($total icv_good=0)" \
        || fail "esp_tshark.$alg.wrong_key_rejected" "$good packets verified with a wrong key"
    mv "$work/$alg.keys.good" "$work/$alg.keys"
}

check_alg aes128gcm16
check_alg aes256gcm16
exit $failed
