#!/bin/bash
# One back-end node of the compose drill: dovecot (IMAP, POP3) and nginx on
# 127.0.0.1, the esproxy backend role (as the unprivileged user esproxy)
# terminating the front-ends' tunnels on the VIP, and keepalived (VRRPv3)
# holding the VIP. Runs as PID 1: TERM stops the backend first (it sends
# DELETE, so front-ends re-key at once), then the rest.
#
# Environment: NODE_NAME (default: hostname), VIP (10.99.5.100),
# VRRP_PRIORITY (100), VRRP_STATE (BACKUP), VRRP_ADVERT (0.1 s),
# VRRP_IFACE (eth0), VRRP_STARTUP_DELAY (0 s; give the preferred node a head
# start so the VIP does not move while front-ends connect), MAIL_USER/MAIL_PASS (alice/secret123),
# MAIL_DIR (/srv/mail, shared by the nodes), REPORT_DIR (/report: VIP
# transitions are appended to $REPORT_DIR/vip.log when it exists).
# Needs the capabilities NET_ADMIN (VIP) and NET_RAW (VRRP, gratuitous ARP).
set -u
NODE_NAME=${NODE_NAME:-$(hostname)}
VIP=${VIP:-10.99.5.100}
VRRP_PRIORITY=${VRRP_PRIORITY:-100}
VRRP_STATE=${VRRP_STATE:-BACKUP}
VRRP_ADVERT=${VRRP_ADVERT:-0.1}
VRRP_IFACE=${VRRP_IFACE:-eth0}
VRRP_STARTUP_DELAY=${VRRP_STARTUP_DELAY:-0}
MAIL_USER=${MAIL_USER:-alice}
MAIL_PASS=${MAIL_PASS:-secret123}
MAIL_DIR=${MAIL_DIR:-/srv/mail}
REPORT_DIR=${REPORT_DIR:-/report}
R=/run/node
mkdir -p "$R"
log() { echo "node=$NODE_NAME $*"; }

# ---- the shared mailbox: seeded once (first node to take the lock) ----
printf '%s:{PLAIN}%s\n' "$MAIL_USER" "$MAIL_PASS" >"$R/users"
chmod 644 "$R/users"
md="$MAIL_DIR/$MAIL_USER/Maildir"
if mkdir "$MAIL_DIR/.seeded" 2>/dev/null; then
    mkdir -p "$md/cur" "$md/new" "$md/tmp"
    {
        printf 'From: drill@example.test\r\nTo: %s@example.test\r\nSubject: drill message\r\n' "$MAIL_USER"
        printf 'Date: Fri, 27 Nov 2026 00:00:00 +0000\r\nMessage-ID: <drill1@example.test>\r\n\r\n'
        head -c 2000 /dev/urandom | base64 -w 76 | sed 's/$/\r/'
    } >"$md/cur/1700000000.M1P1.drill:2,S"
    chown -R 65534:65534 "$MAIL_DIR/$MAIL_USER"
    log "event=mail_seeded dir=$MAIL_DIR"
fi

# ---- dovecot ----
# shellcheck source=../tests/lab/conf.sh
. /usr/local/lib/esproxy/conf.sh
conf_dovecot "$R/dovecot" "$R/dovecot-state" /dev/stderr 127.0.0.1 "$R/users" "$MAIL_DIR/%u" no >"$R/dovecot.conf"
mkdir -p "$R/dovecot-state"

# ---- nginx: /health names the node ----
mkdir -p "$R/web/html" "$R/web/tmp" "$R/web/logs"
echo "esproxy drill node $NODE_NAME" >"$R/web/html/index.html"
cat >"$R/nginx.conf" <<EOF
daemon off; master_process on; worker_processes 1; events { worker_connections 512; }
pid $R/web/nginx.pid; error_log stderr warn;
http {
  access_log off; default_type application/octet-stream;
  client_body_temp_path $R/web/tmp/body;  proxy_temp_path $R/web/tmp/proxy;
  fastcgi_temp_path $R/web/tmp/fastcgi;  uwsgi_temp_path $R/web/tmp/uwsgi;  scgi_temp_path $R/web/tmp/scgi;
  server { listen 127.0.0.1:8080;  root $R/web/html;
           location /health { return 200 "ok $NODE_NAME\n"; } }
}
EOF

# ---- keepalived ----
cat >"$R/vip-notify.sh" <<EOF
#!/bin/sh
# keepalived: notify.sh GROUP|INSTANCE NAME STATE PRIORITY
t=\$(date +%s%3N)
echo "node=$NODE_NAME event=vrrp state=\$3 t_ms=\$t"
[ -d "$REPORT_DIR" ] && echo "\$3 \$t $NODE_NAME" >>"$REPORT_DIR/vip.log"
exit 0
EOF
chmod 755 "$R/vip-notify.sh"
conf_keepalived "$NODE_NAME" "$VRRP_STATE" "$VRRP_PRIORITY" "$VRRP_ADVERT" 51 "$VIP/24" "$VRRP_IFACE" \
    "$R/vip-notify.sh" "vrrp_startup_delay $VRRP_STARTUP_DELAY" >"$R/keepalived.conf"

pids=()
dovecot -F -c "$R/dovecot.conf" &
pids+=($!)
nginx -c "$R/nginx.conf" -e stderr &
pids+=($!)
# the backend role: unprivileged; binds the VIP with IP_FREEBIND before holding it
# (UDP 500 needs net.ipv4.ip_unprivileged_port_start=0, set by compose)
mkdir -p /run/esproxy && chown esproxy:esproxy /run/esproxy
setpriv --reuid=esproxy --regid=esproxy --clear-groups /usr/local/bin/esproxy run -c /etc/esproxy/backend.ini &
backend=$!
pids+=($backend)
keepalived -n -l -D -f "$R/keepalived.conf" -p "$R/keepalived.pid" -r "$R/vrrp.pid" &
pids+=($!)
log "event=started dovecot=${pids[0]} nginx=${pids[1]} backend=$backend keepalived=${pids[3]}"

stop() {
    log "event=stopping"
    kill -TERM "$backend" 2>/dev/null
    sleep 0.2
    kill -TERM "${pids[@]}" 2>/dev/null
    wait
    exit 0
}
trap stop TERM INT
# a service that dies takes the node down (compose shows it as exited)
wait -n
rc=$?
log "event=service_exited rc=$rc"
kill -TERM "${pids[@]}" 2>/dev/null
wait
exit 1
