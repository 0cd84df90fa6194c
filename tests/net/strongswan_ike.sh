#!/bin/sh
# IKEv2 interop with Debian's strongSwan 5.9.8 (charon with kernel-libipsec)
# in two network namespaces: esproxy's IKE (tests/tools/ike_peer) in A
# (10.99.1.1), charon in B (10.99.1.2). Both directions, PSK and X.509
# certificates (esproxy RSA, strongSwan ECDSA, one CA); the two esproxy
# identities (fe / fe-cert) select strongSwan's PSK or certificate connection.
#
# On this host strongSwan's userspace ESP (libipsec) has no transport mode
# (../shared/LAB.md 5a): the IKE SA is established and authenticated both
# ways, and strongSwan's refusal to install the transport-mode CHILD SA is
# asserted explicitly. The transport-mode data path against a real kernel
# is the interop issue's user-mode-linux lab.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
PEER=${IKE_PEER:-$ROOT/build/rel/tools/ike_peer}
L=$(mktemp -d)
NS=ess$$
charon_pid=
cleanup() {
    [ -n "$charon_pid" ] && kill "$charon_pid" 2>/dev/null && sleep 0.3
    ip netns del "${NS}a" 2>/dev/null
    ip netns del "${NS}b" 2>/dev/null
    rm -rf "$L"
}
trap cleanup EXIT

# ---- topology ----
ip netns add "${NS}a" && ip netns add "${NS}b" || { fail "netns" "cannot create namespaces"; finish; }
ip link add eth0 netns "${NS}a" type veth peer name eth0 netns "${NS}b"
ip -n "${NS}a" addr add 10.99.1.1/24 dev eth0
ip -n "${NS}b" addr add 10.99.1.2/24 dev eth0
for n in a b; do ip -n "${NS}$n" link set eth0 up; ip -n "${NS}$n" link set lo up; done

# ---- PKI (openssl): CA, esproxy RSA cert, strongSwan ECDSA cert ----
mkdir -p "$L/pki" "$L/b/x509" "$L/b/x509ca" "$L/b/private"
(
    cd "$L/pki" || exit 1
    printf 'subjectAltName=DNS:fe-cert.example.test\nbasicConstraints=CA:FALSE\n' >fe.ext
    printf 'subjectAltName=DNS:mail.example.test\nbasicConstraints=CA:FALSE\n' >be.ext
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key &&
    openssl req -x509 -new -key ca.key -subj "/CN=esproxy interop CA" -days 3650 \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem &&
    openssl genrsa -out fe.key 2048 &&
    openssl req -new -key fe.key -subj "/CN=fe-cert.example.test" -out fe.csr &&
    openssl x509 -req -in fe.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -extfile fe.ext -out fe.pem &&
    openssl ecparam -name prime256v1 -genkey -noout -out be.key &&
    openssl req -new -key be.key -subj "/CN=mail.example.test" -out be.csr &&
    openssl x509 -req -in be.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -extfile be.ext -out be.pem
) >"$L/pki.log" 2>&1 || { fail "pki" "$(tail -n 3 "$L/pki.log")"; finish; }
cp "$L/pki/be.pem" "$L/b/x509/"; cp "$L/pki/ca.pem" "$L/b/x509ca/"; cp "$L/pki/be.key" "$L/b/private/"
printf 'interop-psk-0123456789' >"$L/psk"

# ---- charon in B ----
cat >"$L/b/strongswan.conf" <<EOF
charon {
  load = random nonce openssl kdf aes sha1 sha2 hmac gcm pem pkcs1 pkcs8 x509 pubkey curve25519 kernel-libipsec kernel-netlink socket-default vici updown
  install_routes = no
  filelog { main { path = $L/b/charon.log
                   time_format = %H:%M:%S
                   flush_line = yes
                   default = 1
                   ike = 2 } }
  syslog { daemon { default = -1 } }
  plugins { vici { socket = unix://$L/b/charon.vici }
            kernel-libipsec { allow_peer_ts = yes }
            socket-default { fwmark = 0x42 }
            kernel-netlink { fwmark = !0x42 } }
}
EOF
child='children { c { mode = transport
                      esp_proposals = aes128gcm16
                      start_action = none } }'
cat >"$L/b/swanctl.conf" <<EOF
connections {
  resp-psk { version = 2
    local_addrs = 10.99.1.2
    remote_addrs = 10.99.1.1
    encap = yes
    proposals = aes128gcm16-prfsha256-x25519
    local { auth = psk
            id = mail.example.test }
    remote { auth = psk
             id = fe.example.test }
    $child }
  resp-cert { version = 2
    local_addrs = 10.99.1.2
    remote_addrs = 10.99.1.1
    encap = yes
    proposals = aes256gcm16-prfsha384-ecp256
    local { auth = pubkey
            certs = be.pem
            id = mail.example.test }
    remote { auth = pubkey
             id = fe-cert.example.test }
    $child }
}
secrets { ike-lab { id-a = mail.example.test
                    id-b = fe.example.test
                    secret = "interop-psk-0123456789" } }
EOF
ip netns exec "${NS}b" unshare -m --propagation private sh -c \
    "mount -t tmpfs lab-run /run && exec env STRONGSWAN_CONF=$L/b/strongswan.conf /usr/lib/ipsec/charon" \
    >"$L/b/stdout" 2>&1 &
charon_pid=$!
i=0; while [ ! -S "$L/b/charon.vici" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
swan() { swanctl "$@" --uri "unix://$L/b/charon.vici"; }
if swan --load-all --file "$L/b/swanctl.conf" >"$L/load.log" 2>&1; then
    pass "strongSwan charon up ($(swan --version 2>/dev/null | grep -o '5\.[0-9.]*' | head -n 1)), connections loaded"
else
    fail "strongSwan start" "$(cat "$L/load.log" "$L/b/stdout")"; finish
fi

# esproxy configs: $1 role, $2 auth (psk|cert), $3 identity
esproxy_conf() {
    if [ "$1" = frontend ]; then peer=10.99.1.2; tail='[listen x]
address = 127.0.0.1:1143
protocol = imap'; else peer=any; tail='[forward]
143 = 127.0.0.1:143'; fi
    if [ "$2" = psk ]; then auth="psk_file = $L/psk"; props=aes128gcm16-prfsha256-x25519; else
        auth="auth = cert
cert = $L/pki/fe.pem
key = $L/pki/fe.key
ca = $L/pki/ca.pem"; props=aes256gcm16-prfsha384-ecp256; fi
    cat <<EOF
[esproxy]
role = $1
[tunnel t]
local = 10.99.1.1
peer = $peer
local_id = $3
peer_id = mail.example.test
$auth
ike_proposals = $props
protected_ports = 110,143
$tail
EOF
}

# ---- esproxy initiates ----
initiator_case() {  # $1 label, $2 auth, $3 id, $4 strongSwan conn, $5 strongSwan verb
    esproxy_conf frontend "$2" "$3" >"$L/i.ini"
    : >"$L/b/charon.log"
    ip netns exec "${NS}a" "$PEER" -c "$L/i.ini" --run-ms 3000 >"$L/i.out" 2>&1
    if grep -q "event=ike_peer_authenticated .*peer_id=mail.example.test method=$2" "$L/i.out"; then
        pass "$1: esproxy authenticated strongSwan ($2)"
    else
        fail "$1: esproxy authenticated strongSwan" "$(cat "$L/i.out")"
    fi
    if grep -q "IKE_SA $4\[[0-9]*\] established between 10.99.1.2\[mail.example.test\]...10.99.1.1\[$3\]" "$L/b/charon.log" &&
       grep -q "authentication of '$3' with $5 successful" "$L/b/charon.log"; then
        pass "$1: strongSwan authenticated esproxy and established the IKE SA"
    else
        fail "$1: strongSwan established the IKE SA" "$(grep -E 'IKE|CFG' "$L/b/charon.log" | tail -n 8)"
    fi
    if grep -q "IPsec SA: unsupported mode" "$L/b/charon.log" && grep -q "event=ike_child_refused .*notify=14" "$L/i.out"; then
        pass "$1: strongSwan's libipsec refused the transport-mode CHILD SA (NO_PROPOSAL_CHOSEN), as expected here"
    else
        fail "$1: CHILD SA refusal" "$(tail -n 5 "$L/i.out")"
    fi
}
initiator_case "esproxy -> strongSwan, PSK" psk fe.example.test resp-psk "pre-shared key"
initiator_case "esproxy -> strongSwan, certificates" cert fe-cert.example.test resp-cert "RSA_EMSA_PKCS1_SHA2_256"

# ---- strongSwan initiates (to esproxy's port 500, then 4500) ----
responder_case() {  # $1 label, $2 auth, $3 id, $4 strongSwan conn [$5 ike_peer option]
    esproxy_conf backend "$2" "$3" >"$L/r.ini"
    : >"$L/b/charon.log"
    ip netns exec "${NS}a" "$PEER" -c "$L/r.ini" --run-ms 4000 ${5:-} >"$L/r.out" 2>&1 &
    rp=$!
    sleep 0.3
    swan --initiate --ike "$4" --child c --timeout 3 >"$L/init.log" 2>&1
    wait "$rp"
    if grep -q "event=ike_peer_authenticated .*peer_id=mail.example.test method=$2" "$L/r.out" &&
       grep -q "^event=established" "$L/r.out"; then
        pass "$1: esproxy (responder) authenticated strongSwan and installed the CHILD SA"
    else
        fail "$1: esproxy responder" "$(cat "$L/r.out")"
    fi
    if grep -q "IKE_SA $4\[[0-9]*\] established between 10.99.1.2\[mail.example.test\]...10.99.1.1\[$3\]" "$L/b/charon.log"; then
        pass "$1: strongSwan (initiator) established the IKE SA"
    else
        fail "$1: strongSwan initiator" "$(grep -E 'IKE|CFG|ENC' "$L/b/charon.log" | tail -n 8)"
    fi
    if grep -q "IPsec SA: unsupported mode" "$L/b/charon.log"; then
        pass "$1: strongSwan's libipsec could not install transport mode, as expected here"
    else
        fail "$1: libipsec refusal" "$(grep -E 'ESP|CHILD' "$L/b/charon.log" | tail -n 4)"
    fi
}
responder_case "strongSwan -> esproxy, PSK" psk fe.example.test resp-psk
responder_case "strongSwan -> esproxy, certificates" cert fe-cert.example.test resp-cert
# every IKE_SA_INIT must return a COOKIE (RFC 7296 2.6; ours: version | SHA-256, 33 bytes);
# strongSwan first forgets the PSK case's IKE SA, or it would reuse it
swan --terminate --ike resp-psk --force >/dev/null 2>&1
responder_case "strongSwan -> esproxy, PSK, COOKIE demanded" psk fe.example.test resp-psk --cookies
grep -q 'IKE_SA_INIT response 0 \[ N(COOKIE) \]' "$L/b/charon.log" &&
    pass "strongSwan -> esproxy, PSK, COOKIE demanded: strongSwan received our COOKIE and returned it" ||
    fail "strongSwan -> esproxy: COOKIE" "$(grep -E 'IKE_SA_INIT|COOKIE' "$L/b/charon.log" | head -n 4)"

# ---- a wrong PSK is refused by both ----
printf 'a-different-psk-000000' >"$L/psk"
esproxy_conf frontend psk fe.example.test >"$L/w.ini"
: >"$L/b/charon.log"
ip netns exec "${NS}a" "$PEER" -c "$L/w.ini" --run-ms 3000 >"$L/w.out" 2>&1
if grep -q "^event=auth_failed" "$L/w.out" && grep -q "generating IKE_AUTH response 1 \[ N(AUTH_FAILED) \]" "$L/b/charon.log"; then
    pass "wrong PSK: strongSwan answers AUTHENTICATION_FAILED and esproxy installs nothing"
else
    fail "wrong PSK" "$(cat "$L/w.out"; tail -n 4 "$L/b/charon.log")"
fi
finish
