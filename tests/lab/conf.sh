# Configuration files shared by the namespace lab (tests/lab/lib.sh), the
# user-mode-linux lab (tests/interop/uml_lab.sh) and the compose drill's
# nodes (docker/node-entrypoint.sh); each prints to stdout.

conf_dovecot() {    # base_dir state_dir log listen users_file home haproxy(yes|no)
    cat <<EOF
base_dir = $1
state_dir = $2
log_path = $3
info_log_path = $3
protocols = imap pop3
listen = $4
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
login_trusted_networks = 127.0.0.0/8
haproxy_trusted_networks = 127.0.0.0/8
service imap-login {
  inet_listener imap {
    port = 143
    haproxy = $7
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 110
    haproxy = $7
  }
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $5
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=$6
}
mail_location = maildir:~/Maildir
protocol imap {
  mail_max_userip_connections = 2000
}
protocol pop3 {
  mail_max_userip_connections = 2000
}
EOF
    # CONF_DOVECOT_REUSE=yes: reused, pre-started login and imap/pop3
    # processes (dovecot's high-performance mode). With the defaults every
    # session forks a login and a mail process, which queue under
    # concurrency (a greeting waited 20 -> 856 ms at 1 -> 20 concurrent
    # logins, tests/bench/login_curve.sh) and crawl under user-mode-linux:
    # drills want sessions whose length is the tunnel's, not dovecot's.
    [ "${CONF_DOVECOT_REUSE:-no}" = yes ] || return 0
    cat <<EOF
service imap-login {
  service_count = 0
  process_min_avail = 1
}
service pop3-login {
  service_count = 0
  process_min_avail = 1
}
service imap {
  service_count = 0
  process_min_avail = 2
  process_limit = 64
}
service pop3 {
  service_count = 0
  process_min_avail = 2
  process_limit = 64
}
EOF
}

# The esproxy front-end toward the VIP, listening for clients on listen_ip.
# Knobs: CONF_LOG_LEVEL, CONF_PROBE_MS, CONF_DEAD_MS, CONF_RETRANSMIT_MS,
# CONF_RETRANSMIT_TRIES, CONF_SPECULATIVE; extra lines go into [tunnel main].
conf_frontend() {   # dir local peer psk_file listen_ip [extra tunnel lines]
    cat <<EOF
[esproxy]
role = frontend
log_level = ${CONF_LOG_LEVEL:-info}
control = $1/control.sock
keylog = $1/keys.log
[tunnel main]
local = $2
peer = $3
local_id = fe.example.test
peer_id = mail.example.test
psk_file = $4
protected_ports = 80,110,143
probe_interval_ms = ${CONF_PROBE_MS:-1000}
dead_after_ms = ${CONF_DEAD_MS:-300}
retransmit_ms = ${CONF_RETRANSMIT_MS:-100}
retransmit_tries = ${CONF_RETRANSMIT_TRIES:-8}
speculative_rekey = ${CONF_SPECULATIVE:-yes}
${6:-}
[listen imap]
address = $5:143
protocol = imap
[listen pop3]
address = $5:110
protocol = pop3
[listen http]
address = $5:80
protocol = http
EOF
}

# keepalived (VRRPv3, fractional advert_int) holding the VIP; the notify
# script gets GROUP|INSTANCE NAME STATE PRIORITY.
conf_keepalived() { # router_id state priority advert_int vrid vip/len iface notify [global_defs line]
    cat <<EOF
global_defs {
  router_id $1
  vrrp_version 3
  vrrp_garp_master_delay 0
  vrrp_garp_master_repeat 3
  ${9:-}
  script_user root
  enable_script_security
}
vrrp_instance VI_VIP {
  state $2
  interface $7
  virtual_router_id $5
  priority $3
  advert_int $4
  virtual_ipaddress { $6 dev $7 }
  notify $8
}
EOF
}

conf_vip_notify() { # transitions_file: a notify script appending "STATE epoch_ms" lines
    cat <<EOF
#!/bin/sh
# keepalived calls: notify.sh GROUP|INSTANCE NAME STATE PRIORITY
echo "\$3 \$(date +%s%3N)" >>"$1"
EOF
}
