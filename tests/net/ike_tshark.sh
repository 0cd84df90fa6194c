#!/bin/sh
# IKEv2 from esproxy code over real UDP on loopback (initiator 127.0.0.1,
# responder 127.0.0.2, port 14500), captured with tcpdump and decrypted by
# tshark from esproxy's key log: every encrypted message's integrity
# checksum must be [correct] and IKE_AUTH's identities must decode. Run for
# an AES-CBC+HMAC-SHA-256 IKE SA and an AES-GCM-16 one.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
PEER=${IKE_PEER:-$ROOT/build/rel/tools/ike_peer}
T=$(mktemp -d)
pids=
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT

write_configs() {   # $1 = ike proposal
    printf 'tshark-test-psk-0123456789\n' >"$T/psk"
    cat >"$T/fe.ini" <<INI
[esproxy]
role = frontend
keylog = $T/keys.log
[tunnel t]
local = 127.0.0.1
peer = 127.0.0.2
local_id = fe.example.test
peer_id = mail.example.test
psk_file = $T/psk
udp_port = 14500
ike_proposals = $1
[listen x]
address = 127.0.0.1:1143
protocol = imap
INI
    cat >"$T/be.ini" <<INI
[esproxy]
role = backend
[tunnel t]
local = 127.0.0.2
peer = any
local_id = mail.example.test
peer_id = fe.example.test
psk_file = $T/psk
udp_port = 14500
ike_proposals = $1
[forward]
143 = 127.0.0.1:143
INI
}

run_case() {    # $1 = label, $2 = proposal
    rm -f "$T/keys.log" "$T/cap.pcap"
    write_configs "$2"
    tcpdump -i lo -U -w "$T/cap.pcap" udp port 14500 2>"$T/tcpdump.err" &
    tp=$!; pids="$pids $tp"
    i=0; while ! grep -q "listening on" "$T/tcpdump.err" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    "$PEER" -c "$T/be.ini" --run-ms 2000 >"$T/be.out" 2>&1 &
    bp=$!; pids="$pids $bp"
    sleep 0.2
    if "$PEER" -c "$T/fe.ini" --run-ms 1500 --probe >"$T/fe.out" 2>&1; then
        pass "$1: IKE SA and CHILD SA established over UDP, probe answered"
    else
        fail "$1: IKE SA established" "$(cat "$T/fe.out" "$T/be.out")"
    fi
    wait "$bp"
    sleep 0.3
    kill "$tp"; wait "$tp" 2>/dev/null
    opt=$(sed -n 's/^uat:ikev2_decryption_table:/uat:ikev2_decryption_table:/p' "$T/keys.log" | head -n 1)
    [ -n "$opt" ] && pass "$1: key log has an ikev2_decryption_table line" || fail "$1: key log" "no ikev2 line"
    [ "$(stat -c %a "$T/keys.log")" = 600 ] && pass "$1: key log is mode 0600" || fail "$1: key log mode" "$(stat -c %a "$T/keys.log")"
    tshark -r "$T/cap.pcap" -d udp.port==14500,udpencap -o "$opt" -V >"$T/dissect.txt" 2>&1
    good=$(grep -c 'Integrity Checksum Data: .*\[correct\]' "$T/dissect.txt")
    bad=$(grep -c 'Integrity Checksum Data: .*\[incorrect\]' "$T/dissect.txt")
    enc=$(grep -c 'Payload: Encrypted and Authenticated' "$T/dissect.txt")
    if [ "$enc" -ge 4 ] && [ "$good" -eq "$enc" ] && [ "$bad" -eq 0 ]; then
        pass "$1: tshark verified the integrity checksum of all $enc encrypted messages"
    else
        fail "$1: tshark integrity" "encrypted=$enc correct=$good incorrect=$bad"
    fi
    if grep -q 'ID_FQDN: fe.example.test' "$T/dissect.txt" && grep -q 'ID_FQDN: mail.example.test' "$T/dissect.txt" &&
       grep -q 'Notify Message Type: USE_TRANSPORT_MODE' "$T/dissect.txt"; then
        pass "$1: tshark decoded IDi, IDr and USE_TRANSPORT_MODE inside IKE_AUTH"
    else
        fail "$1: IKE_AUTH contents" "identities not decoded"
    fi
}

run_case "AES-CBC-128/HMAC-SHA-256" "aes128-sha256-x25519"
run_case "AES-GCM-128" "aes128gcm16-prfsha256-x25519"
run_case "AES-GCM-256/SHA-384/ECP-256" "aes256gcm16-prfsha384-ecp256"
finish
