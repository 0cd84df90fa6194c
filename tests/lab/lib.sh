# The namespace cluster lab: sourced by lab tests, not run.
#
#   client (10.99.1.2) --- fe (10.99.1.1 | 10.99.2.10) --- switch bridge --- be1 (10.99.2.11)
#                                                                        \-- be2 (10.99.2.12)
#   VIP 10.99.2.100 on a back-end node (moved by hand or by keepalived)
#
# Each back-end node runs real dovecot (IMAP + POP3, plaintext auth, one
# maildir shared by both nodes, as cluster storage would be), real nginx
# and esproxy's backend role; all of them listen on 127.0.0.1 inside the
# node, and the backend role forwards the protected ports to them. Every
# process is started here with its PID recorded; lab_cleanup stops them by
# PID and deletes the namespaces. Traffic stays inside these namespaces.
#
# Needs: LAB (scratch dir), P (namespace prefix), ROOT (repo root).
#
# ESPROXY_BIN picks the esproxy binary of the frontend and backend roles
# (default build/esproxy). With the ASan+UBSan build
# (ESPROXY_BIN=$ROOT/build/asan/esproxy) the sanitizer options below are
# exported, reports go to each process's own log, lab_cleanup stops the
# esproxy processes with SIGTERM and waits for them (LeakSanitizer reports
# at exit), and lab_san_check then fails the lab on any report in those logs.

ESPROXY_BIN=${ESPROXY_BIN:-$ROOT/build/esproxy}
. "$ROOT/tests/lab/conf.sh"
LAB_VIP=10.99.2.100
LAB_PSK=lab-psk-0123456789abcdef
LAB_USER=alice
LAB_PASS=secret123
lab_pids=
lab_esproxy_pids=   # esproxy processes: stopped gracefully first at cleanup
lab_esproxy_logs=   # their logs (and LOG.N of earlier processes), scanned by lab_san_check

lab_track() { lab_pids="$lab_pids $1"; }

# ---- esproxy processes and the sanitizers ----
lab_san() {     # true when ESPROXY_BIN is built with AddressSanitizer
    [ -n "${lab_san_bin:-}" ] ||
        { grep -qa __asan_init "$ESPROXY_BIN" 2>/dev/null && lab_san_bin=yes || lab_san_bin=no; }
    [ "$lab_san_bin" = yes ]
}
if lab_san; then
    # exit with a report instead of an abort and a core; UBSan stops at the
    # first error too; leaks are checked at exit; the caller's options win
    export ASAN_OPTIONS="abort_on_error=0:halt_on_error=1:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
fi

lab_esproxy_log() {     # log: an esproxy process logs here (scanned at cleanup)
    case " $lab_esproxy_logs " in *" $1 "*) ;; *) lab_esproxy_logs="$lab_esproxy_logs $1" ;; esac
}

lab_esproxy_log_new() { # log: as lab_esproxy_log, for a new process: an earlier process's log there moves to LOG.N
    lab_esproxy_log "$1"
    [ -e "$1" ] || return 0
    k=1; while [ -e "$1.$k" ]; do k=$((k + 1)); done
    mv "$1" "$1.$k"
}

lab_esproxy_track() { lab_esproxy_pids="$lab_esproxy_pids $1"; }   # pid: an esproxy process

lab_alive() {   # pid: running (a zombie child counts as exited)
    [ -d "/proc/$1" ] && ! grep -qs '^State:.*Z' "/proc/$1/status"
}

lab_stop_esproxy() {    # SIGTERM every esproxy process (CONT: a drill may have frozen it) and wait until it exits
    for p in $lab_esproxy_pids; do kill -TERM "$p" 2>/dev/null; kill -CONT "$p" 2>/dev/null; done
    for p in $lab_esproxy_pids; do
        # a clean stop takes the shutdown DELETE wait (200 ms) and the leak
        # check; give up only on a process that hangs
        i=0; while lab_alive "$p" && [ $i -lt 300 ]; do sleep 0.05; i=$((i + 1)); done
        lab_alive "$p" && echo "note: esproxy pid $p still running 15 s after SIGTERM: killed (no leak check)"
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    lab_esproxy_pids=
}

# lab_san_check: with the ASan build, after the esproxy processes exited:
# "FAIL sanitizer: LOG: <the report's first lines>" per log with an
# AddressSanitizer, LeakSanitizer or UBSan report (the whole log is kept
# under build/test-output/sanitizer/), else "PASS no sanitizer report".
lab_san_check() {
    lab_san || return 0
    n=0 bad=0
    for f in $lab_esproxy_logs; do
        for g in "$f" "$f".[0-9]*; do
            [ -f "$g" ] || continue
            n=$((n + 1))
            # (and LSan that could not run: no leak check is no pass)
            grep -q -e 'ERROR: AddressSanitizer' -e 'ERROR: LeakSanitizer' -e 'runtime error:' \
                -e 'LeakSanitizer has encountered a fatal error' "$g" || continue
            bad=$((bad + 1))
            keep="$ROOT/build/test-output/sanitizer/$P.$(echo "${g#"$LAB"/}" | tr / _)"
            mkdir -p "${keep%/*}" && cp "$g" "$keep"
            printf 'FAIL sanitizer: %s (kept as %s): ' "${g#"$LAB"/}" "${keep#"$ROOT"/}"
            # from the first report line, up to 16 lines before the shadow
            # map (4 frames of each stack: where, freed, allocated), then SUMMARY
            awk '!on && /ERROR: (Address|Leak)Sanitizer|runtime error:|LeakSanitizer has encountered/ { on = 1 }
                 !on || NF == 0 { next }
                 /^SUMMARY:/ { sum = $0; exit }
                 /^Shadow bytes/ { stop = 1 }
                 match($0, /^[ \t]*#[0-9]+ /) && substr($0, index($0, "#") + 1) + 0 >= 4 { next }
                 !stop && k < 16 { sub(/^[ \t]+/, ""); print (k++ ? "    " : "") $0 }
                 END { if (sum != "") print "    " sum }' "$g"
        done
    done
    [ "$bad" = 0 ] && echo "PASS no sanitizer report ($n logs)"
    [ "$bad" = 0 ]
}

lab_ns() { echo "$P$1"; }

lab_net() {     # creates client, fe, sw, be1, be2
    ip netns add "$(lab_ns sw)" || return 1
    for n in client fe be1 be2; do ip netns add "$(lab_ns $n)" || return 1; done
    ip -n "$(lab_ns sw)" link add br0 type bridge
    ip -n "$(lab_ns sw)" link set br0 up
    ip link add eth1 netns "$(lab_ns client)" type veth peer name eth1 netns "$(lab_ns fe)"
    ip -n "$(lab_ns client)" addr add 10.99.1.2/24 dev eth1
    ip -n "$(lab_ns fe)" addr add 10.99.1.1/24 dev eth1
    i=10
    for n in fe be1 be2; do
        ip link add eth0 netns "$(lab_ns $n)" type veth peer name "p-$n" netns "$(lab_ns sw)"
        ip -n "$(lab_ns sw)" link set "p-$n" master br0 up
        ip -n "$(lab_ns $n)" addr add "10.99.2.$i/24" dev eth0
        ip -n "$(lab_ns $n)" link set eth0 up
        i=$((i + 1))
    done
    for n in client fe be1 be2; do
        ip -n "$(lab_ns $n)" link set lo up
        ip netns exec "$(lab_ns $n)" sysctl -qw net.ipv4.ip_forward=0
    done
    ip -n "$(lab_ns client)" link set eth1 up
    ip -n "$(lab_ns fe)" link set eth1 up
    for n in be1 be2; do
        # the backend role binds the VIP before holding it with IP_FREEBIND
        # (no ip_nonlocal_bind here, to prove it); an unprivileged backend
        # may bind UDP 500
        ip netns exec "$(lab_ns $n)" sysctl -qw net.ipv4.ip_nonlocal_bind=0
        ip netns exec "$(lab_ns $n)" sysctl -qw net.ipv4.ip_unprivileged_port_start=0
    done
}

lab_net3() {    # prefix (e.g. 10.99.40): client -- fe -- be1, no switch; fe .1 (clients) and .65, be1 .66 and the VIP .100
    for n in client fe be1; do ip netns add "$(lab_ns $n)" || return 1; done
    ip link add eth1 netns "$(lab_ns client)" type veth peer name eth1 netns "$(lab_ns fe)" || return 1
    ip link add eth0 netns "$(lab_ns fe)" type veth peer name eth0 netns "$(lab_ns be1)" || return 1
    ip -n "$(lab_ns client)" addr add "$1.2/26" dev eth1
    ip -n "$(lab_ns fe)" addr add "$1.1/26" dev eth1
    ip -n "$(lab_ns fe)" addr add "$1.65/26" dev eth0
    ip -n "$(lab_ns be1)" addr add "$1.66/26" dev eth0
    ip -n "$(lab_ns be1)" addr add "$1.100/26" dev eth0
    for n in client fe be1; do
        ip -n "$(lab_ns $n)" link set lo up
        for d in eth0 eth1; do ip -n "$(lab_ns $n)" link set $d up 2>/dev/null; done
        ip netns exec "$(lab_ns $n)" sysctl -qw net.ipv4.ip_forward=0
    done
}

lab_vip_add() { # node
    ip -n "$(lab_ns "$1")" addr add "$LAB_VIP/24" dev eth0
}

lab_mail() {    # the shared mail store with one message of $1 bytes (default 2 KB)
    size=${1:-2000}
    mkdir -p "$LAB/mail/shared/$LAB_USER/Maildir/cur" "$LAB/mail/shared/$LAB_USER/Maildir/new" \
             "$LAB/mail/shared/$LAB_USER/Maildir/tmp"
    printf '%s:{PLAIN}%s\n' "$LAB_USER" "$LAB_PASS" >"$LAB/mail/users"
    {
        printf 'From: lab@example.test\r\nTo: %s@example.test\r\nSubject: lab message\r\n' "$LAB_USER"
        printf 'Date: Fri, 27 Nov 2026 00:00:00 +0000\r\nMessage-ID: <lab1@example.test>\r\n\r\n'
        head -c "$size" /dev/urandom | base64 -w 76 | sed 's/$/\r/'
    } >"$LAB/mail/shared/$LAB_USER/Maildir/cur/1700000000.M1P1.lab:2,S"
    chown -R 65534:65534 "$LAB/mail/shared"
    chmod 755 "$LAB/mail"
}

lab_dovecot() { # node [haproxy]
    n=$1 hp=${2:-no}
    d="$LAB/$n/dovecot"
    mkdir -p "$d/run" "$d/state"
    conf_dovecot "$d/run" "$d/state" "$d/dovecot.log" "${LAB_DOVECOT_LISTEN:-127.0.0.1}" "$LAB/mail/users" \
        "$LAB/mail/shared/%u" "$hp" >"$d/dovecot.conf"
    ip netns exec "$(lab_ns "$n")" dovecot -F -c "$d/dovecot.conf" >"$d/stdout" 2>&1 &
    lab_track $!
    i=0
    while ! ip netns exec "$(lab_ns "$n")" doveadm -c "$d/dovecot.conf" auth test "$LAB_USER" "$LAB_PASS" \
            >/dev/null 2>&1 && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
}

lab_nginx() {   # node [proxy_protocol]
    n=$1 pp=${2:-}
    w="$LAB/$n/web"
    mkdir -p "$w/logs" "$w/tmp" "$LAB/web/html"
    [ -f "$LAB/web/html/index.html" ] || echo "esproxy lab" >"$LAB/web/html/index.html"
    cat >"$w/nginx.conf" <<EOF
daemon off; master_process on; worker_processes 1; events { worker_connections 512; }
pid $w/nginx.pid; error_log $w/logs/error.log info;
http {
  log_format lab '\$remote_addr \$proxy_protocol_addr \$request \$status \$body_bytes_sent';
  access_log $w/logs/access.log lab;  default_type application/octet-stream;
  client_body_temp_path $w/tmp/body;  proxy_temp_path $w/tmp/proxy;
  fastcgi_temp_path $w/tmp/fastcgi;  uwsgi_temp_path $w/tmp/uwsgi;  scgi_temp_path $w/tmp/scgi;
  client_max_body_size 100m;
  # /upload answers before it has read the body and then discards it,
  # closing when none arrives for lingering_timeout (5 s by default): a
  # client esproxy stops reading (its output is full) would lose the rest
  lingering_timeout 30s;
  server { listen 127.0.0.1:8080 ${pp};  ${LAB_NGINX_EXTRA_LISTEN:+listen $LAB_NGINX_EXTRA_LISTEN;}  root $LAB/web/html;
           location /health { return 200 "ok $n\n"; }
           location /upload { return 200 "uploaded\n"; } }
}
EOF
    ip netns exec "$(lab_ns "$n")" nginx -p "$w" -c "$w/nginx.conf" -e "$w/logs/error.log" >"$w/stdout" 2>&1 &
    lab_track $!
}

lab_haproxy() {  # node listen=target...: a plain TCP relay (HAProxy, one thread), the benchmarks' reference
    n=$1; shift
    first=${1%%=*}
    mkdir -p "$LAB/$n"
    {
        printf 'global\n  maxconn 8000\n  nbthread 1\n'
        printf 'defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\n'
        for m in "$@"; do
            printf 'listen l_%s\n  bind %s\n  server s %s\n' "$(echo "${m%%=*}" | tr -c '0-9a-z\n' _)" "${m%%=*}" "${m#*=}"
        done
    } >"$LAB/$n/haproxy.cfg"
    ip netns exec "$(lab_ns "$n")" haproxy -db -f "$LAB/$n/haproxy.cfg" >"$LAB/$n/haproxy.log" 2>&1 &
    lab_track $!
    i=0; while ! ip netns exec "$(lab_ns "$n")" ss -Hltn "sport = :${first##*:}" 2>/dev/null | grep -q . && [ $i -lt 100 ]; do
        sleep 0.05; i=$((i + 1))
    done
    ip netns exec "$(lab_ns "$n")" ss -Hltn "sport = :${first##*:}" | grep -q .
}

lab_backend_conf() {    # node [proxy_protocol]
    n=$1 pp=${2:-none}
    mkdir -p "$LAB/$n"
    printf '%s\n' "$LAB_PSK" >"$LAB/psk"
    chmod 644 "$LAB/psk"
    cat >"$LAB/$n/backend.ini" <<EOF
[esproxy]
role = backend
log_level = ${LAB_LOG_LEVEL:-info}
control = $LAB/$n/control.sock
[tunnel main]
local = $LAB_VIP
peer = any
local_id = mail.example.test
peer_id = fe.example.test
psk_file = $LAB/psk
protected_ports = 80,110,143
[forward]
110 = 127.0.0.1:110
143 = 127.0.0.1:143
80 = 127.0.0.1:8080
proxy_protocol = $pp
EOF
}

lab_backend() {     # node [user]
    n=$1 user=${2:-root}
    [ -f "$LAB/$n/backend.ini" ] || lab_backend_conf "$n"
    # a restart must not see the last run's log or socket: the redirect
    # below truncates in the child, after our wait may have looked
    rm -f "$LAB/$n/control.sock"
    lab_esproxy_log_new "$LAB/$n/backend.log"
    if [ "$user" = root ]; then
        ip netns exec "$(lab_ns "$n")" "$ESPROXY_BIN" run -c "$LAB/$n/backend.ini" >"$LAB/$n/backend.log" 2>&1 &
    else
        chmod 755 "$LAB" "$LAB/$n"
        chmod 777 "$LAB/$n"
        ip netns exec "$(lab_ns "$n")" setpriv --reuid="$user" --regid=nogroup --clear-groups \
            "$ESPROXY_BIN" run -c "$LAB/$n/backend.ini" >"$LAB/$n/backend.log" 2>&1 &
    fi
    lab_track $!
    lab_esproxy_track $!
    eval "lab_backend_pid_$n=$!"
    i=0; while [ ! -S "$LAB/$n/control.sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
}

lab_pki() {     # a test CA and a server certificate for the front-end's TLS listeners
    mkdir -p "$LAB/pki"
    (
        cd "$LAB/pki" || exit 1
        printf 'subjectAltName=DNS:mail.lab.test,IP:10.99.1.1\nbasicConstraints=CA:FALSE\n' >srv.ext
        openssl ecparam -name prime256v1 -genkey -noout -out ca.key &&
        openssl req -x509 -new -key ca.key -subj "/CN=esproxy lab CA" -days 3650 \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" -out ca.pem &&
        openssl ecparam -name prime256v1 -genkey -noout -out srv.key &&
        openssl req -new -key srv.key -subj "/CN=mail.lab.test" -out srv.csr &&
        openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -extfile srv.ext -out srv.pem
    ) >"$LAB/pki.log" 2>&1
}

lab_frontend_tls_listeners() {  # [address]: appended to a frontend config: implicit TLS listeners
    la=${1:-10.99.1.1}
    for l in "imaps 993 imap" "pop3s 995 pop3" "https 443 http"; do
        set -- $l
        printf '[listen %s]\naddress = %s:%s\nprotocol = %s\ntls = implicit\ncert = %s\nkey = %s\n' \
            "$1" "$la" "$2" "$3" "$LAB/pki/srv.pem" "$LAB/pki/srv.key"
    done
}

lab_frontend_starttls() {   # file: its pop3 and imap listeners offer STARTTLS (plaintext login allowed)
    sed -i -e "s|^protocol = imap|protocol = imap\ntls = starttls\nplaintext_auth = yes\ncert = $LAB/pki/srv.pem\nkey = $LAB/pki/srv.key|" \
           -e "s|^protocol = pop3|protocol = pop3\ntls = starttls\nplaintext_auth = yes\ncert = $LAB/pki/srv.pem\nkey = $LAB/pki/srv.key|" "$1"
}

lab_node_start() {  # node: dovecot, nginx and the backend role (no PROXY protocol) on it
    lab_dovecot "$1" no
    lab_nginx "$1"
    lab_backend_conf "$1" none
    lab_backend "$1"
}

lab_frontend_conf() {   # file
    CONF_LOG_LEVEL=${LAB_LOG_LEVEL:-info} CONF_PROBE_MS=${LAB_PROBE_MS:-1000} CONF_DEAD_MS=${LAB_DEAD_MS:-300} \
        CONF_RETRANSMIT_MS=${LAB_RETRANSMIT_MS:-100} CONF_RETRANSMIT_TRIES=${LAB_RETRANSMIT_TRIES:-8} \
        CONF_SPECULATIVE=${LAB_SPECULATIVE:-yes} conf_frontend "$LAB/fe" 10.99.2.10 "$LAB_VIP" "$LAB/psk" 10.99.1.1 >"$1"
}

lab_frontend_start() {  # conf: esproxy run (frontend) in fe; waits for the tunnel; sets lab_frontend_pid
    mkdir -p "$LAB/fe"
    lab_esproxy_log_new "$LAB/fe/fe.log"     # not the last run's "up" (see lab_backend)
    ip netns exec "$(lab_ns fe)" "$ESPROXY_BIN" run -c "$1" >"$LAB/fe/fe.log" 2>&1 &
    lab_frontend_pid=$!
    lab_track $lab_frontend_pid
    lab_esproxy_track $lab_frontend_pid
    i=0
    while ! grep -qs "event=tunnel name=main event=up" "$LAB/fe/fe.log" && [ $i -lt 300 ]; do sleep 0.05; i=$((i + 1)); done
    grep -qs "event=tunnel name=main event=up" "$LAB/fe/fe.log"
}

lab_wait_load() {   # file...: wait (up to 10 s) until each session log has a record, then 1.5 s more
    # a failover drill's action comes about 2 s into its load, counted from
    # the load's first finished session: python's start on a busy host took
    # 2.3 s once, and a drill with no session in flight measures nothing
    for f in "$@"; do
        i=0; while [ ! -s "$f" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    done
    sleep 1.5
}
lab_client() {  # run a command in the client namespace
    ip netns exec "$(lab_ns client)" "$@"
}

lab_stop_all() {   # stop every tracked process and wait for it, so ports are free again
    lab_stop_esproxy
    for p in $lab_pids; do kill "$p" 2>/dev/null; done
    for p in $lab_pids; do
        i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    lab_pids=
}

lab_cleanup() {     # stop everything, delete the namespaces; status 1 on a sanitizer report
    lab_stop_esproxy
    for p in $lab_pids; do kill "$p" 2>/dev/null; done
    sleep 0.3
    for p in $lab_pids; do kill -9 "$p" 2>/dev/null; done
    for n in client fe be1 be2 sw; do ip netns del "$(lab_ns $n)" 2>/dev/null; done
    lab_san_check
}

lab_exit() {    # a lab script's EXIT trap: lab_cleanup, remove $LAB; exit 1 on a sanitizer report
    lab_cleanup; r=$?
    rm -rf "$LAB"
    [ "$r" = 0 ] || exit 1
}

# ---- keepalived (VRRPv3, fractional advert_int) moving the VIP ----
lab_keepalived() {  # node priority state
    n=$1 prio=$2 st=$3
    k="$LAB/$n/ka"
    mkdir -p "$k"
    conf_vip_notify "$k/transitions" >"$k/notify.sh"
    chmod 755 "$k/notify.sh"
    conf_keepalived "$n" "$st" "$prio" "${LAB_ADVERT:-0.1}" 51 "$LAB_VIP/24" eth0 "$k/notify.sh" >"$k/keepalived.conf"
    ip netns exec "$(lab_ns "$n")" keepalived -n -l -D -f "$k/keepalived.conf" -p "$k/ka.pid" -r "$k/vrrp.pid" \
        >"$k/keepalived.log" 2>&1 &
    lab_track $!
    eval "lab_keepalived_pid_$n=$!"
}

lab_vip_holder() {  # prints be1, be2, both or none
    h=
    for n in be1 be2; do
        ip -n "$(lab_ns $n)" -4 addr show dev eth0 | grep -q "$LAB_VIP/" && h="$h $n"
    done
    set -- $h
    case $# in 0) echo none ;; 1) echo "$1" ;; *) echo both ;; esac
}

lab_wait_vip() {    # node [timeout_ms]: wait until node holds the VIP
    i=0; lim=$(( ${2:-5000} / 10 ))
    while ! ip -n "$(lab_ns "$1")" -4 addr show dev eth0 | grep -q "$LAB_VIP/" && [ $i -lt $lim ]; do
        sleep 0.01; i=$((i + 1))
    done
    ip -n "$(lab_ns "$1")" -4 addr show dev eth0 | grep -q "$LAB_VIP/"
}
