# Hosts made of network namespaces, for scripts/cluster-test and bench/scale (sourced, bash).
#
# hosts_up DIR BIN COUNT: hosts h1…hCOUNT, each a network namespace $NS-hI on its own veth link
# (the host is $NET.I.2, this machine's end $NET.I.1), running sshd in a private mount
# namespace whose /root is DIR/hI/home: every host has its own home, with the tools of BIN
# installed in ~/.local/bin. Writes DIR/ssh/config and sets SSH="ssh -F DIR/ssh/config", which
# reaches them as h1…hCOUNT (root, a key made here, ControlMaster).
# hosts_down: stops every process in the namespaces and removes them and their links.
# Needs root, iproute2, unshare, mount, openssh-server and -client. Set NS and NET first.

hosts_up() {
    local W=$1 BIN=$2 count=$3 i h t up
    HOSTS_COUNT=$count
    mkdir -p "$W/ssh"
    # keys and ssh configuration
    ssh-keygen -q -t ed25519 -N "" -f "$W/ssh/host_key" -C cluster-test-host
    ssh-keygen -q -t ed25519 -N "" -f "$W/ssh/id" -C cluster-test-client
    cp "$W/ssh/id.pub" "$W/ssh/authorized_keys"
    : > "$W/ssh/known_hosts"
    {
        for i in $(seq "$count"); do
            echo "Host h$i"
            echo "    HostName $NET.$i.2"
        done
        echo "Host *"
        echo "    User root"
        echo "    IdentityFile $W/ssh/id"
        echo "    IdentitiesOnly yes"
        echo "    UserKnownHostsFile $W/ssh/known_hosts"
        echo "    StrictHostKeyChecking accept-new"
        echo "    BatchMode yes"
        echo "    ConnectTimeout 3"
        # a host whose link is cut is noticed in about three seconds, not TCP's minutes
        echo "    ServerAliveInterval 1"
        echo "    ServerAliveCountMax 3"
        echo "    LogLevel ERROR"
        # one connection per host, reused by every job, transfer and cleanup: parallel opens
        # several ssh sessions per job, and a new connection took 0.23 s here, a reused one
        # 0.01 s (bench/scale); make cluster-test went from 173 s to 94 s with it
        echo "    ControlMaster auto"
        echo "    ControlPath $W/ssh/cm-%h"
        echo "    ControlPersist 60"
    } > "$W/ssh/config"
    SSH="ssh -F $W/ssh/config"
    mkdir -p /run/sshd   # sshd's privilege-separation directory

    # the hosts
    for i in $(seq "$count"); do
        h=$W/h$i
        mkdir -p "$h/home/.local/bin" "$h/home/.cache/huggingface"
        for t in ru-embed ru-knn ru-vec; do install -m 755 "$BIN/$t" "$h/home/.local/bin/$t"; done
        ip netns add "$NS-h$i" || { hosts_fail "cannot create network namespace $NS-h$i"; return 1; }
        ip link add "$NS-v$i" type veth peer name "$NS-p$i" || { hosts_fail "cannot create veth $NS-v$i"; return 1; }
        ip link set "$NS-p$i" netns "$NS-h$i"
        ip addr add "$NET.$i.1/24" dev "$NS-v$i"
        ip link set "$NS-v$i" up
        ip netns exec "$NS-h$i" ip addr add "$NET.$i.2/24" dev "$NS-p$i"
        ip netns exec "$NS-h$i" ip link set "$NS-p$i" up
        ip netns exec "$NS-h$i" ip link set lo up
        printf '%s\n' "ListenAddress $NET.$i.2" "HostKey $W/ssh/host_key" "PidFile $h/sshd.pid" \
            "AuthorizedKeysFile $W/ssh/authorized_keys" "PermitRootLogin prohibit-password" \
            "PasswordAuthentication no" "KbdInteractiveAuthentication no" "UsePAM no" \
            "StrictModes no" "MaxStartups 50" "MaxSessions 50" > "$h/sshd_config"
        # the host's own home: a private mount namespace with $h/home over /root
        ip netns exec "$NS-h$i" unshare --mount --propagation private \
            sh -c "mount --bind '$h/home' /root && exec /usr/sbin/sshd -f '$h/sshd_config' -E '$h/sshd.log'" \
            || { hosts_fail "sshd did not start on h$i (see $h/sshd.log)"; return 1; }
    done
    for i in $(seq "$count"); do
        up=""
        for _ in $(seq 50); do
            if $SSH "h$i" true 2>/dev/null; then up=1; break; fi
            sleep 0.1
        done
        [ -n "$up" ] || { hosts_fail "cannot ssh to h$i ($(cat "$W/h$i/sshd.log" 2>/dev/null | tail -1))"; return 1; }
    done
}

hosts_fail() { echo "hosts: $*" >&2; return 1; }

hosts_down() {
    local i pids
    if [ -n "${SSH:-}" ]; then   # the ssh connection masters
        for i in $(seq "${HOSTS_COUNT:-3}"); do $SSH -O exit "h$i" 2>/dev/null || true; done
    fi
    for i in $(seq "${HOSTS_COUNT:-3}"); do
        # sshd and every session it started live in the namespace: kill them all
        pids=$(ip netns pids "$NS-h$i" 2>/dev/null || true)
        if [ -n "$pids" ]; then kill $pids 2>/dev/null || true; fi
    done
    sleep 0.2
    for i in $(seq "${HOSTS_COUNT:-3}"); do
        pids=$(ip netns pids "$NS-h$i" 2>/dev/null || true)
        if [ -n "$pids" ]; then kill -9 $pids 2>/dev/null || true; fi
        ip link del "$NS-v$i" 2>/dev/null || true
        ip netns del "$NS-h$i" 2>/dev/null || true
    done
    return 0
}
