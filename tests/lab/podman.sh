# Rootful podman with private state, for tests/docker and tests/fresh:
# sourced, not run. LAB.md section 6: default ulimits this kernel refuses to
# raise (no CAP_SYS_RESOURCE), runc instead of crun (hybrid cgroups), and
# storage, configuration and run state of its own (nothing under /etc or
# /var/lib).

podman_setup() {    # dir state: configuration under dir/podman; image store, run root and libpod state in state
    mkdir -p "$1/podman/tmp" "$1/podman/networks" "$2"
    cat >"$1/podman/storage.conf" <<EOF
[storage]
driver = "overlay"
runroot = "$2/run"
graphroot = "$2/storage"
EOF
    cat >"$1/podman/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
image_copy_tmp_dir = "$1/podman/tmp"
tmp_dir = "$2/libpod"
events_logger = "file"
cgroup_manager = "cgroupfs"
[network]
network_backend = "netavark"
network_config_dir = "$1/podman/networks"
EOF
    export CONTAINERS_STORAGE_CONF="$1/podman/storage.conf" CONTAINERS_CONF="$1/podman/containers.conf"
    export TMPDIR="$1/podman/tmp"
}

# podman_reap [-n NETNS] DIR...: after podman's own teardown, stop by PID the
# processes whose command line names a DIR (conmon monitors of that storage,
# slirp4netns, a late `podman container cleanup` that conmon may still spawn:
# it looks a few times) and every process left in NETNS, then unmount what is
# mounted below the DIRs (overlay and shm mounts), deepest first.
podman_reap() {
    ns=
    if [ "$1" = -n ]; then ns=$2; shift 2; fi
    n=0
    while [ $n -lt 10 ]; do
        left=
        [ -n "$ns" ] && [ -e "/run/netns/$ns" ] && left=$(ip netns pids "$ns" 2>/dev/null)
        for d in "$@"; do
            for p in $(grep -l -s -F -e "$d" /proc/[0-9]*/cmdline | cut -d/ -f3); do
                [ "$p" != $$ ] && left="$left $p"
            done
        done
        [ -z "$left" ] && [ $n -ge 2 ] && break
        for p in $left; do kill "$p" 2>/dev/null; done
        sleep 0.3
        for p in $left; do kill -9 "$p" 2>/dev/null; done
        n=$((n + 1))
    done
    for d in "$@"; do
        awk -v l="$d/" 'index($2, l) == 1 {print $2}' /proc/mounts
    done | sort -r | while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
}
