# The user-mode-linux strongSwan lab: sourced by tests, not run.
#
#   client ns (10.99.4.2) --veth-- fe ns (10.99.4.1 | br0 10.99.3.10) --TAP-- UML be1 (10.99.3.11)
#                                                                    \--TAP-- UML be2 (10.99.3.12)
#   VIP 10.99.3.100, moved between the UML nodes by keepalived (VRRPv3, advert_int 0.1)
#
# Each UML node runs a real Linux kernel (Debian's user-mode-linux 6.1) with
# kernel ESP (esp4, xfrm_user, gcm), keyed by strongSwan charon + swanctl
# (PSK, encap = yes, transport mode, AES-GCM-16, the protected ports as
# traffic selectors), dovecot (IMAP, POP3; one maildir on the host shared
# by both nodes), nginx and keepalived. The esproxy frontend runs in the fe
# namespace, the host side of the bridge. The root filesystem is cached by
# build-rootfs.sh and mounted read-only over hostfs; per-run config, logs
# and the command spool live under $LAB/uml, mounted at /lab in every node.
#
# Needs: LAB (scratch dir), P (namespace prefix), ROOT (repo root).
# ESPROXY_BIN as in tests/lab/lib.sh (its esproxy and sanitizer helpers
# serve here too): with the ASan build, uml_cleanup fails on a report.

UML_VIP=10.99.3.100
UML_FE=10.99.3.10
UML_PSK=uml-lab-psk-0123456789abcdef
UML_USER=alice
UML_PASS=secret123
UML_ROOTFS=
. "$ROOT/tests/lab/lib.sh"
uml_pids=          # host processes we started (UML kernels are stopped separately)
uml_nodes=

uml_ns() { echo "$P$1"; }

uml_rootfs() {  # build or reuse the cached rootfs; sets UML_ROOTFS
    UML_ROOTFS=$(sh "$ROOT/tests/interop/build-rootfs.sh") || return 1
    chmod 755 "$UML_ROOTFS"     # the nodes' / (non-root daemons traverse it)
    # PID 1 script: refresh it if this checkout's copy differs
    cmp -s "$ROOT/tests/interop/uml-init" "$UML_ROOTFS/sbin/lab-init" ||
        install -m 755 "$ROOT/tests/interop/uml-init" "$UML_ROOTFS/sbin/lab-init"
}

uml_net() {     # fe (bridge + TAPs), client
    ip netns add "$(uml_ns fe)" || return 1
    ip netns add "$(uml_ns client)" || return 1
    fe=$(uml_ns fe)
    ip -n "$fe" link add br0 type bridge
    ip -n "$fe" addr add "$UML_FE/24" dev br0
    ip -n "$fe" link set br0 up
    ip -n "$fe" link set lo up
    for t in 1 2; do
        ip -n "$fe" tuntap add dev "tap$t" mode tap
        ip -n "$fe" link set "tap$t" master br0 up
    done
    ip link add eth1 netns "$(uml_ns client)" type veth peer name eth1 netns "$fe"
    ip -n "$(uml_ns client)" addr add 10.99.4.2/24 dev eth1
    ip -n "$fe" addr add 10.99.4.1/24 dev eth1
    for n in client fe; do
        ip -n "$(uml_ns $n)" link set lo up
        ip -n "$(uml_ns $n)" link set eth1 up
        ip netns exec "$(uml_ns $n)" sysctl -qw net.ipv4.ip_forward=0
    done
}

uml_mail() {    # the shared maildir with one message
    m="$LAB/uml/mail"
    mkdir -p "$m/shared/$UML_USER/Maildir/cur" "$m/shared/$UML_USER/Maildir/new" "$m/shared/$UML_USER/Maildir/tmp"
    printf '%s:{PLAIN}%s\n' "$UML_USER" "$UML_PASS" >"$m/users"
    {
        printf 'From: lab@example.test\r\nTo: %s@example.test\r\nSubject: uml lab message\r\n' "$UML_USER"
        printf 'Date: Fri, 27 Nov 2026 00:00:00 +0000\r\nMessage-ID: <uml1@example.test>\r\n\r\n'
        head -c 2000 /dev/urandom | base64 -w 76 | sed 's/$/\r/'
    } >"$m/shared/$UML_USER/Maildir/cur/1700000000.M1P1.uml:2,S"
    chown -R 65534:65534 "$m/shared"
    chmod 755 "$m"
}

# swanctl.conf for a node; $1 node, $2 IKE rekey_time, $3 CHILD rekey_time
# (strongSwan's defaults when empty). What an administrator would write for
# a transport-mode peer behind a VIP: PSK, UDP encapsulation, AES-GCM, the
# mail and web ports as traffic selectors.
uml_swanctl_conf() {
    ike_rk=${2:+rekey_time = $2}
    child_rk=${3:+rekey_time = $3}
    cat >"$LAB/uml/$1/swanctl.conf" <<EOF
connections {
  fe {
    version = 2
    local_addrs = $UML_VIP
    remote_addrs = $UML_FE
    encap = yes
    proposals = aes128gcm16-prfsha256-x25519
    $ike_rk
    local {
      auth = psk
      id = mail.example.test
    }
    remote {
      auth = psk
      id = fe.example.test
    }
    children {
      mail {
        mode = transport
        esp_proposals = aes128gcm16
        local_ts = $UML_VIP/32[tcp/80],$UML_VIP/32[tcp/110],$UML_VIP/32[tcp/143]
        remote_ts = $UML_FE/32[tcp]
        $child_rk
        start_action = none
      }
    }
  }
}
secrets {
  ike-fe {
    id-1 = mail.example.test
    id-2 = fe.example.test
    secret = "$UML_PSK"
  }
}
EOF
}

uml_node_conf() {   # node ip mac prio state
    n=$1 ip=$2 prio=$4 st=$5
    d="$LAB/uml/$n"
    mkdir -p "$d/cmd"
    cat >"$d/strongswan.conf" <<EOF
charon {
  load = random nonce openssl kdf aes sha1 sha2 hmac gcm pem pkcs1 x509 pubkey kernel-netlink socket-default vici updown
  filelog {
    main {
      path = /lab/$n/charon.log
      time_format = %H:%M:%S
      flush_line = yes
      default = 1
      ike = 2
      chd = 2
    }
  }
  syslog { daemon { default = -1 } }
  plugins { vici { socket = unix:///run/charon.vici } }
}
swanctl { socket = unix:///run/charon.vici }
EOF
    uml_swanctl_conf "$n"
    # every fork+exec is slow under user-mode-linux, and the slower the
    # busier the host: without reuse a mail session cost 0.7 s on an idle
    # node and 3-18 s once the lab's load held the node's CPU at 100%
    CONF_DOVECOT_REUSE=yes conf_dovecot /run/dovecot /run/dovecot-state "/lab/$n/dovecot.log" "*" \
        /lab/mail/users /run/mail/%u no >"$d/dovecot.conf"
    cat >"$d/nginx.conf" <<EOF
daemon on; master_process on; worker_processes 1; events { worker_connections 512; }
pid /run/nginx.pid; error_log /lab/$n/nginx-error.log info;
http {
  access_log /lab/$n/nginx-access.log;  default_type text/plain;
  client_body_temp_path /run/nginx-body;  proxy_temp_path /run/nginx-proxy;
  fastcgi_temp_path /run/nginx-fastcgi;  uwsgi_temp_path /run/nginx-uwsgi;  scgi_temp_path /run/nginx-scgi;
  server { listen 80; root /lab/html;
           location /health { return 200 "ok $n\n"; } }
}
EOF
    conf_vip_notify "/lab/$n/transitions" >"$d/notify.sh"
    chmod 755 "$d/notify.sh"
    conf_keepalived "$n" "$st" "$prio" 0.1 53 "$UML_VIP/24" eth0 "/lab/$n/notify.sh" >"$d/keepalived.conf"
    printf '%s %s %s\n' "$n" "$ip" "$3" >"$d/node"
}

uml_common() {  # files shared by all nodes: init.sh, html
    mkdir -p "$LAB/uml/html" "$LAB/uml/tmp" "$LAB/uml/umldir"
    echo "esproxy uml lab" >"$LAB/uml/html/index.html"
    cat >"$LAB/uml/init.sh" <<'EOF'
# Run by /sbin/lab-init (PID 1) inside a UML node; $lab_node, $lab_ip set.
n=$lab_node
D=/lab/$n
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /dev/shm
mount -t hostfs -o /usr/lib/uml/modules none /lib/modules
modprobe -a ipv6 xfrm_user esp4 gcm ghash-generic seqiv echainiv authenc ctr drbg ansi_cprng hmac sha512_generic
# the kernel stops spawning modprobe for every crypto lookup (slow under UML)
echo > /proc/sys/kernel/modprobe
ip link set lo up
ip addr add "$lab_ip" dev eth0
ip link set eth0 up
echo 0 > /proc/sys/net/ipv4/ip_forward
echo "$(date +%s%3N) boot" >$D/stage
STRONGSWAN_CONF=$D/strongswan.conf /usr/lib/ipsec/charon >$D/charon.stdout 2>&1 &
echo $! >/run/charon.pid.lab
i=0; while [ ! -S /run/charon.vici ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
swanctl --load-all --file $D/swanctl.conf >$D/swanctl-load.log 2>&1
# dovecot's index files need locks and writes hostfs does not do well:
# each node gets its own copy of the (test) mailbox on tmpfs
cp -a /lab/mail/shared /run/mail && chown -R 65534:65534 /run/mail
dovecot -c $D/dovecot.conf
nginx -c $D/nginx.conf -e $D/nginx-error.log
i=0; while ! doveadm -c $D/dovecot.conf auth test alice secret123 >/dev/null 2>&1 && [ $i -lt 30 ]; do
    sleep 0.2; i=$((i+1)); done
keepalived -n -l -D -f $D/keepalived.conf -p /run/ka.pid -r /run/vrrp.pid >$D/keepalived.log 2>&1 &
echo $! >/run/keepalived.pid.lab
echo "$(date +%s%3N) ready" >>$D/stage
touch $D/ready
# command spool: the host drops NAME.sh into $D/cmd, we run it and leave
# NAME.out and NAME.done
while [ ! -e $D/stop ]; do
    for f in $D/cmd/*.sh; do
        [ -e "$f" ] || continue
        b=${f%.sh}
        mv "$f" "$b.run"
        sh "$b.run" >"$b.out" 2>&1
        echo $? >"$b.done"
    done
    sleep 0.05
done
exec busybox poweroff -f
EOF
}

uml_boot() {    # node ip tap mac: boot in the fe namespace; PID recorded
    n=$1
    TMPDIR=$LAB/uml/tmp ip netns exec "$(uml_ns fe)" linux.uml mem=192M "umid=$P$n" "uml_dir=$LAB/uml/umldir" \
        root=/dev/root rootfstype=hostfs "rootflags=$UML_ROOTFS" ro init=/sbin/lab-init \
        "eth0=tuntap,$3,$4" con=null con0=null,fd:1 \
        "lab_dir=$LAB/uml" "lab_node=$n" "lab_ip=$2/24" >"$LAB/uml/$n/console" 2>&1 </dev/null &
    echo $! >"$LAB/uml/$n/uml.pid"
    uml_nodes="$uml_nodes $n"
}

uml_wait_ready() {  # node timeout_s
    i=0; lim=$(( $2 * 10 ))
    while [ ! -e "$LAB/uml/$1/ready" ] && [ $i -lt $lim ]; do sleep 0.1; i=$((i + 1)); done
    [ -e "$LAB/uml/$1/ready" ]
}

uml_seq=0
uml_cmd() {     # node timeout_s script...: run a shell script inside the node, print its output
    n=$1 to=$2; shift 2
    uml_seq=$((uml_seq + 1))
    c="$LAB/uml/$n/cmd/c$uml_seq"
    printf '%s\n' "$*" >"$c.tmp"
    mv "$c.tmp" "$c.sh"
    i=0; lim=$(( to * 20 ))
    while [ ! -e "$c.done" ] && [ $i -lt $lim ]; do sleep 0.05; i=$((i + 1)); done
    cat "$c.out" 2>/dev/null
    [ -e "$c.done" ] && [ "$(cat "$c.done")" = 0 ]
}
uml_cmd_async() {   # node script...: drop a command, do not wait
    n=$1; shift
    uml_seq=$((uml_seq + 1))
    c="$LAB/uml/$n/cmd/c$uml_seq"
    printf '%s\n' "$*" >"$c.tmp"
    mv "$c.tmp" "$c.sh"
}

uml_vip_time() {    # node: time keepalived on the node last became MASTER
    sed -n 's/^MASTER //p' "$LAB/uml/$1/transitions" 2>/dev/null | tail -n 1
}

uml_wait_master() { # node since_ms [timeout_s]: prints the time node became MASTER after since
    i=0; lim=$(( ${3:-5} * 100 ))
    while [ $i -lt $lim ]; do
        t=$(uml_vip_time "$1")
        [ -n "$t" ] && [ "$t" -ge "$2" ] && { echo "$t"; return 0; }
        sleep 0.01; i=$((i + 1))
    done
    echo 0; return 1
}

uml_track() { uml_pids="$uml_pids $1"; }

# VIP arrival seen on the wire, host clock: keepalived's gratuitous ARP for
# the VIP from a node's MAC (the node's own notify script runs late under UML)
uml_arp_watch() {
    ip netns exec "$(uml_ns fe)" tcpdump -i br0 -n -e -tt -l arp >"$LAB/arp.log" 2>/dev/null &
    uml_track $!
}
uml_wait_garp() {   # mac since_ms [timeout_s]: prints the ms time of the first GARP from mac after since
    i=0; lim=$(( ${3:-5} * 100 ))
    while [ $i -lt $lim ]; do
        t=$(awk -v mac="$1" -v since="$2" -v vip="$UML_VIP" '
            $2 == mac && (index($0, "tell " vip ",") || index($0, vip " is-at")) {
                split($1, a, "."); ms = a[1] * 1000 + substr(a[2] "000", 1, 3)
                if (ms >= since) { printf "%.0f\n", ms; exit } }' "$LAB/arp.log")
        [ -n "$t" ] && { echo "$t"; return 0; }
        sleep 0.02; i=$((i + 1))
    done
    echo 0; return 1
}

uml_cleanup() {     # status 1 on a sanitizer report (lab_san_check)
    lab_stop_esproxy
    for p in $uml_pids; do kill "$p" 2>/dev/null; done
    for n in $uml_nodes; do
        [ -f "$LAB/uml/$n/uml.pid" ] && kill -TERM "$(cat "$LAB/uml/$n/uml.pid")" 2>/dev/null
    done
    i=0
    while [ $i -lt 50 ]; do
        alive=
        for n in $uml_nodes; do
            [ -f "$LAB/uml/$n/uml.pid" ] && kill -0 "$(cat "$LAB/uml/$n/uml.pid")" 2>/dev/null && alive=1
        done
        for p in $uml_pids; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ -z "$alive" ] && break
        sleep 0.1; i=$((i + 1))
    done
    for n in $uml_nodes; do
        [ -f "$LAB/uml/$n/uml.pid" ] && kill -KILL "$(cat "$LAB/uml/$n/uml.pid")" 2>/dev/null
    done
    for p in $uml_pids; do kill -KILL "$p" 2>/dev/null; done
    # UML helper processes left in the namespace (should be none after TERM)
    for ns in fe client; do
        for p in $(ip netns pids "$(uml_ns $ns)" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del "$(uml_ns $ns)" 2>/dev/null
    done
    lab_san_check
}

uml_frontend_conf() {   # file: the esproxy frontend toward the VIP (knobs from UML_* variables)
    mkdir -p "$LAB/fe"
    printf '%s\n' "$UML_PSK" >"$LAB/fe/psk"
    chmod 600 "$LAB/fe/psk"
    CONF_LOG_LEVEL=${UML_LOG_LEVEL:-info} CONF_PROBE_MS=${UML_PROBE_MS:-1000} CONF_DEAD_MS=${UML_DEAD_MS:-300} \
        CONF_RETRANSMIT_MS=${UML_RETRANSMIT_MS:-100} CONF_RETRANSMIT_TRIES=${UML_RETRANSMIT_TRIES:-8} \
        CONF_SPECULATIVE=${UML_SPECULATIVE:-yes} conf_frontend "$LAB/fe" "$UML_FE" "$UML_VIP" "$LAB/fe/psk" 10.99.4.1 \
        "auth = psk
ike_proposals = aes128gcm16-prfsha256-x25519
esp_proposals = aes128gcm16" >"$1"
}

uml_fe_ups() {  # how many times the frontend's log says the tunnel came up (0 before the log exists)
    n=$(grep -cs "event=tunnel name=main event=up" "$LAB/fe/fe.log")
    echo "${n:-0}"
}

uml_frontend_start() {  # conf: esproxy run (frontend) in fe; waits for the tunnel; sets uml_frontend_pid
    # the log is appended across restarts: wait for one more "up" than before
    ups=$(uml_fe_ups)
    lab_esproxy_log "$LAB/fe/fe.log"
    ip netns exec "$(uml_ns fe)" "$ESPROXY_BIN" run -c "$1" >>"$LAB/fe/fe.log" 2>&1 &
    uml_frontend_pid=$!
    uml_track $uml_frontend_pid
    lab_esproxy_track $uml_frontend_pid
    i=0
    while [ "$(uml_fe_ups)" -le "$ups" ] && [ $i -lt 200 ]; do
        sleep 0.05; i=$((i + 1))
    done
    [ "$(uml_fe_ups)" -gt "$ups" ]
}

uml_client() { ip netns exec "$(uml_ns client)" "$@"; }
