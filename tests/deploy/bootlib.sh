# bootlib.sh — what the booted deployment tests (boot.sh, boot_twohost.sh) share: a Debian root made
# with debootstrap and cached in $BUILD/deploy-root/, `make install` into a copy of it, systemd-nspawn
# booting that copy with systemd as PID 1, commands run inside it, and tearing it all down again.
# Sourced, not run. The sourcing script sets WORK (its scratch folder, removed at the end) and calls
# boot_cleanup from its EXIT trap.
#
# No machined here (--register=no --keep-unit: the host has no systemd as PID 1), so there is no
# `machinectl shell` or `systemctl -M`: commands go into a container with `nsenter -t LEADER -a`, where
# LEADER is the host pid of the container's PID 1 (the child of systemd-nspawn), and the container
# is powered off by SIGTERM to systemd-nspawn (which it turns into SIGRTMIN+3 for the container's init).

BOOT_SUITE=bookworm
# The runtime libraries the binaries link against come from Debian's packages, not the host's files.
BOOT_PKGS=systemd,systemd-sysv,dbus,libuv1,libjansson4,libucx0,libopenblas0,libpcre2-8-0,libsystemd0
# Changing how the root is made changes this key, and so the cache folder.
BOOT_KEY=$(echo "$BOOT_SUITE $BOOT_PKGS machine-id-empty" | sha256sum | cut -c1-12)
BOOT_CACHE=$BUILD/deploy-root/$BOOT_SUITE-$BOOT_KEY
declare -A BOOT_NSPAWN=() BOOT_LEADER=() BOOT_ROOT=() BOOT_EXIT=()

fail() {
    echo "FAIL $*"
    local m
    for m in "${!BOOT_LEADER[@]}"; do
        echo "--- $m: failed units: $(timeout 10 nsenter -t "${BOOT_LEADER[$m]}" -a -- systemctl --failed --no-legend --plain 2>&1 | tr '\n' ' ')"
        timeout 10 nsenter -t "${BOOT_LEADER[$m]}" -a -- journalctl --no-pager -n 60 -o short-monotonic 2>&1 \
            | grep -v ' debug ' | tail -n 30
    done
    exit 1
}

# The kernel or the sandbox may refuse containers: that, and only that, is a skip (exit 77).
boot_check_host() {
    [ "$(id -u)" = 0 ] || { echo "booting a container needs root"; exit 77; }
    local out
    if ! out=$(unshare --mount --pid --net --uts --ipc --fork true 2>&1); then
        echo "the kernel refuses new namespaces, so no container can boot here (unshare: $out)"; exit 77
    fi
    grep -q cgroup /proc/self/mounts || { echo "no cgroup file system mounted: systemd cannot boot in a container"; exit 77; }
    local c
    for c in debootstrap systemd-nspawn nsenter ip curl; do
        command -v $c >/dev/null || fail "$c is missing: run 'make test-deploy' (it installs debootstrap and systemd-container) or 'tools/deps.sh deploy'"
    done
}

# The Debian mirror the host's apt uses (so the root matches what the machine already trusts).
boot_mirror() {
    local m
    m=$(grep -rhoE '^(URIs:|deb) *https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        | grep -oE 'https?://[^ ]+' | head -n 1)
    echo "${DEBIAN_MIRROR:-${m:-http://deb.debian.org/debian}}"
}

# The cached root: debootstrap once per package list (a few minutes), then reused. Prints how it got it.
boot_root_cached() {
    mkdir -p "$BUILD/deploy-root"
    exec 9>"$BUILD/deploy-root/.lock"
    flock 9
    if [ -f "$BOOT_CACHE/.pdserve-root" ]; then
        echo "ok   Debian $BOOT_SUITE root from the cache ($BOOT_CACHE)"
    else
        local t0=$SECONDS mirror
        mirror=$(boot_mirror)
        # Roots made from another package list are stale.
        find "$BUILD/deploy-root" -mindepth 1 -maxdepth 1 -type d -name "$BOOT_SUITE-*" -exec rm -rf --one-file-system {} +
        debootstrap --variant=minbase --include="$BOOT_PKGS" "$BOOT_SUITE" "$BOOT_CACHE.tmp" "$mirror" \
            >"$BUILD/deploy-root/debootstrap.log" 2>&1 \
            || { tail -n 20 "$BUILD/deploy-root/debootstrap.log"; flock -u 9; fail "debootstrap $BOOT_SUITE from $mirror"; }
        # Each boot makes its own machine id; the apt lists are not needed.
        : >"$BOOT_CACHE.tmp/etc/machine-id"
        rm -rf "$BOOT_CACHE.tmp/var/cache/apt/archives/"*.deb "$BOOT_CACHE.tmp/var/lib/apt/lists/"*_Packages
        touch "$BOOT_CACHE.tmp/.pdserve-root"
        mv "$BOOT_CACHE.tmp" "$BOOT_CACHE"
        echo "ok   Debian $BOOT_SUITE root made with debootstrap in $((SECONDS - t0)) s (cached in $BOOT_CACHE)"
    fi
    flock -u 9
}

# boot_make_root NAME: a copy of the cached root with `make install` in it (PREFIX=/usr/local, as an
# operator would), the hostname NAME, a model in /var/lib/pdserve/models/default and no /etc/pdserve.
boot_make_root() {
    local name=$1 root=$WORK/$1
    cp -a --reflink=auto "$BOOT_CACHE" "$root" || fail "copying the cached root"
    echo "$name" >"$root/etc/hostname"
    rm -f "$root/var/lib/dbus/machine-id" # dbus's copy would give every boot the same machine id
    make --no-print-directory -s -o all BUILD="$BUILD" DESTDIR="$root" install >"$WORK/install.log" 2>&1 \
        || { cat "$WORK/install.log"; fail "make install DESTDIR=$root"; }
    local missing b
    for b in pdserve-frontend pdserve-prefill pdserve-decode; do
        [ -x "$root/usr/local/bin/$b" ] || fail "make install did not put $b in $root/usr/local/bin"
    done
    missing=$(chroot "$root" ldd /usr/local/bin/pdserve-frontend /usr/local/bin/pdserve-prefill \
        /usr/local/bin/pdserve-decode 2>&1 | grep 'not found' || true)
    [ -z "$missing" ] || fail "libraries missing in the root (add their packages to BOOT_PKGS): $missing"
    install -d "$root/etc/pdserve" "$root/var/lib/pdserve/models"
    "$BUILD/pdserve-mkmodel" --out "$root/var/lib/pdserve/models/default" --preset tiny --seed 5 --max-pos 32768 \
        >"$WORK/mkmodel.log" 2>&1 || { cat "$WORK/mkmodel.log"; fail "pdserve-mkmodel"; }
    BOOT_ROOT[$name]=$root
}

# boot_start NAME [systemd-nspawn flags]: boots $WORK/NAME, waits until systemd says the system is up.
boot_start() {
    local name=$1 root=$WORK/$1 t0=$SECONDS c state
    shift
    systemd-nspawn --register=no --keep-unit --quiet -D "$root" --machine="$name" -b --console=read-only \
        "$@" </dev/null >"$WORK/$name.console" 2>&1 &
    BOOT_NSPAWN[$name]=$!
    for _ in $(seq 100); do
        for c in $(pgrep -P "${BOOT_NSPAWN[$name]}"); do
            [ "$(cat /proc/"$c"/comm 2>/dev/null)" = systemd ] && BOOT_LEADER[$name]=$c
        done
        [ -n "${BOOT_LEADER[$name]:-}" ] && break
        kill -0 "${BOOT_NSPAWN[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "${BOOT_LEADER[$name]:-}" ] || { tail -n 20 "$WORK/$name.console"; fail "systemd-nspawn did not start systemd in $name"; }
    # PID 1's private socket appears a moment after it starts; then wait for the boot to finish.
    for _ in $(seq 300); do
        state=$(inside "$name" systemctl is-system-running 2>&1) && break
        [[ $state == *"connect to bus"* ]] || break
        sleep 0.1
    done
    state=$(inside "$name" timeout 90 systemctl is-system-running --wait 2>&1)
    case $state in
    running) ;;
    degraded) echo "note $name is degraded: $(inside "$name" systemctl --failed --no-legend --plain | tr '\n' ' ')" ;;
    *) tail -n 20 "$WORK/$name.console"; fail "$name did not boot: systemctl is-system-running says '$state'" ;;
    esac
    echo "ok   $name booted: systemd $(inside "$name" systemctl --version | head -n 1 | cut -d' ' -f2) as PID 1 (host pid ${BOOT_LEADER[$name]}), $state in $((SECONDS - t0)) s"
}

# inside NAME CMD...: runs CMD in every namespace of the container (its root, pids, network, ...).
inside() {
    local name=$1
    shift
    nsenter -t "${BOOT_LEADER[$name]}" -a -- "$@"
}
# on_net NAME CMD...: runs a host program (curl) in the container's network namespace only.
on_net() {
    local name=$1
    shift
    nsenter -t "${BOOT_LEADER[$name]}" -n -- "$@"
}

# stopped_cleanly NAME UNIT SINCE (epoch seconds): the unit's main process exited 0 since then, as
# systemd's journal says ("Deactivated successfully", nothing "Failed"). Not `systemctl show`: an
# inactive unit may be unloaded and its ExecMain* values reset.
stopped_cleanly() {
    local log
    log=$(inside "$1" journalctl -u "$2" -o cat --no-pager --since "@${3%.*}")
    grep -q 'Deactivated successfully' <<<"$log" && ! grep -qE 'Main process exited|Failed with result' <<<"$log"
}

# boot_stop NAME: powers the container off (systemd-nspawn turns SIGTERM into a clean shutdown);
# SIGKILL to its PID 1 (and so to everything in its pid namespace) if that takes over 60 s.
# BOOT_EXIT[NAME]: systemd-nspawn's exit status, 0 when the container's systemd powered off cleanly.
boot_stop() {
    local name=$1 pid=${BOOT_NSPAWN[$1]:-}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "note $name did not power off within 60 s: killed"
        [ -n "${BOOT_LEADER[$name]:-}" ] && kill -KILL "${BOOT_LEADER[$name]}" 2>/dev/null
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    BOOT_EXIT[$name]=$?
    unset "BOOT_NSPAWN[$name]" "BOOT_LEADER[$name]"
}

boot_cleanup() {
    local m
    # A container's network namespace, and the veth ends in it, go when the container does.
    for m in "${!BOOT_NSPAWN[@]}"; do boot_stop "$m"; done
    if [ -n "${KEEP:-}" ]; then
        echo "roots and logs kept in $WORK"
    else
        # --one-file-system: never follow a mount that is somehow left inside a root.
        rm -rf --one-file-system "$WORK"
    fi
}
