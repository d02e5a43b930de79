#!/usr/bin/env bash
# boot_twohost.sh — the multi-node example booted on two machines: two containers (copies of the cached
# root of bootlib.sh, each with `make install`) each in a network namespace of its own, joined by a
# veth pair made here (eth1 at both ends, the example's addresses 10.0.0.1 and 10.0.0.2; nothing else
# reaches them). node1 runs the frontend and prefill0 with its pinning drop-in, node2 decode0, with the
# three-node example's /etc/pdserve files as they are but for the model and sizes (tiny model, one
# thread, this machine's cores), and the cluster key installed as the example's README says
# (/etc/pdserve/cluster.key, root 0600, handed to each daemon by its cluster-key.conf drop-in as the
# systemd credential pdserve-cluster-key). node2 is started first, with a wrong key: its decode worker
# stays `activating` until node1's frontend is up, is refused there, and with the right key and a
# restart registers across the network. A completion (prompt computed on node1,
# KV shipped to node2 over UCX tcp on eth1, tokens generated there) answers; every listener is on a
# documented port; `systemctl stop pdserve.target` on both exits every unit 0. Run by `make test-deploy`.
set -uo pipefail
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
for b in pdserve-frontend pdserve-prefill pdserve-decode pdserve-mkmodel; do
    [ -x "$BUILD/$b" ] || { echo "FAIL $BUILD/$b is not built"; exit 1; }
done
. tests/deploy/bootlib.sh
boot_check_host
mkdir -p "$BUILD/deploy-root"
WORK=$(mktemp -d "$PWD/$BUILD/deploy-root/run.XXXXXX")
trap boot_cleanup EXIT
trap 'exit 143' TERM INT
N1=pdn1x$$ N2=pdn2x$$
IP1=10.0.0.1 IP2=10.0.0.2   # deploy/examples/three-node: node1 and node2
FE=http://$IP1:8000
EX=deploy/examples/three-node

boot_root_cached
# The example's files; only what this machine cannot give is changed: model, sizes, cores.
conf() { # NODE ROOT
    cp "$EX/$1"/*.env "$2/etc/pdserve/"
    cp -R "$EX/$1"/*.service.d "$2/etc/systemd/system/"
    sed -i -e 's|^PDSERVE_MODEL=.*|PDSERVE_MODEL=/var/lib/pdserve/models/default|' \
        -e 's|^PDSERVE_WORKER_ARGS=.*|PDSERVE_WORKER_ARGS=--kv-blocks 512 --threads 1|' "$2/etc/pdserve/cluster.env"
    sed -i -e 's|--threads [0-9]*|--threads 1|' -e 's|--kv-gib [0-9]*|--kv-blocks 512|' "$2"/etc/pdserve/*.env
}
boot_make_root $N1
conf node1 "${BOOT_ROOT[$N1]}"
boot_make_root $N2
conf node2 "${BOOT_ROOT[$N2]}"
# The cluster key as the example's README says: made once, /etc/pdserve/cluster.key (root, 0600) on
# every node; the cluster-key.conf drop-ins hand it to the daemons (LoadCredential=). node2 gets a
# wrong one first, to see it refused; the right one is put in place below.
KEY=$(head -c 32 /dev/urandom | base64)
install -m 0600 /dev/stdin "${BOOT_ROOT[$N1]}/etc/pdserve/cluster.key" <<<"$KEY"
head -c 32 /dev/urandom | base64 | install -m 0600 /dev/stdin "${BOOT_ROOT[$N2]}/etc/pdserve/cluster.key"
# node2's decode worker is pinned to cores 2-31, which a small machine lacks: its last core instead.
sed -i "s|^CPUAffinity=.*|CPUAffinity=$(($(nproc) - 1))|" "${BOOT_ROOT[$N2]}"/etc/systemd/system/pdserve-decode@decode0.service.d/pin.conf
echo "ok   two roots with make install and the three-node example's node1 and node2 files"

# ---- the network: each machine in a network namespace of its own (--private-network: only lo), then
# a veth pair into both, named eth1 at each end. Not --network-namespace-path=/run/netns/X: in such a
# container /sys/class/net lists the host's interfaces, so UCX finds no eth1 and cannot connect
# ("Destination is unreachable"); with --private-network systemd-nspawn mounts /sys for the
# container's own namespace.
boot_start $N1 --private-network
boot_start $N2 --private-network
ip link add eth1 netns "${BOOT_LEADER[$N1]}" type veth peer name eth1 netns "${BOOT_LEADER[$N2]}" || fail "veth pair"
nsenter -t "${BOOT_LEADER[$N1]}" -n ip addr add $IP1/24 dev eth1 && nsenter -t "${BOOT_LEADER[$N2]}" -n ip addr add $IP2/24 dev eth1 \
    && nsenter -t "${BOOT_LEADER[$N1]}" -n ip link set eth1 up && nsenter -t "${BOOT_LEADER[$N2]}" -n ip link set eth1 up \
    || fail "addressing eth1"
for n in $N1 $N2; do
    [[ " $(inside $n ls /sys/class/net | tr '\n' ' ') " == *" eth1 "* ]] || fail "$n does not see eth1 in /sys/class/net: $(inside $n ls /sys/class/net | tr '\n' ' ')"
done
# A moment for the link (and IPv6 duplicate address detection) to settle: UCX lists the interfaces
# once, when a daemon starts, and one not yet running is left out for good.
for _ in $(seq 50); do
    # (inside, not on_net: only the container's own mount of /sys shows its network namespace)
    [ "$(inside $N1 cat /sys/class/net/eth1/operstate 2>/dev/null)" = up ] && [ "$(inside $N2 cat /sys/class/net/eth1/operstate 2>/dev/null)" = up ] && break
    sleep 0.1
done
sleep 2
echo "ok   private network: $N1 ($IP1) and $N2 ($IP2) joined by a veth pair (eth1), nothing else reaches them"
prop() { inside "$1" systemctl show -p "$3" --value "$2"; }
inside $N1 systemctl enable pdserve-frontend.service pdserve-prefill@prefill0.service >/dev/null 2>&1 || fail "enable on node1"
inside $N2 systemctl enable pdserve-decode@decode0.service >/dev/null 2>&1 || fail "enable on node2"

# node2 first: no frontend anywhere yet, so decode0 waits (activating) and retries.
inside $N2 systemctl start --no-block pdserve.target
sleep 3
st=$(prop $N2 pdserve-decode@decode0.service ActiveState)
[ "$st" = activating ] || fail "decode0 on node2 with no frontend is $st, expected activating"
[ "$(prop $N2 pdserve-frontend.service ActiveState)" = inactive ] \
    && [[ $(inside $N2 journalctl -b --no-pager -o cat -u pdserve-frontend.service) == *ConditionPathExists=/etc/pdserve/frontend.env* ]] \
    || fail "pdserve-frontend.service on node2 (no frontend.env) was not skipped by its condition"
echo "ok   node2 started first: decode0 $st (waiting for $IP1:9000), the frontend unit skipped there (no frontend.env)"
inside $N1 timeout 60 systemctl start pdserve.target || fail "systemctl start pdserve.target on node1 (not ready within 60 s)"
# Each daemon read the key from its credential (no --cluster-key-file anywhere in the example).
for pair in "$N1 pdserve-frontend.service" "$N1 pdserve-prefill@prefill0.service" "$N2 pdserve-decode@decode0.service"; do
    read -r n u <<<"$pair"
    src=$(inside "$n" journalctl -b -u "$u" -o cat --no-pager -g 'prove the cluster key from' | tail -n 1)
    [[ $src == *"systemd credential /run/credentials/$u/pdserve-cluster-key"* ]] \
        || fail "$u on $n did not take the cluster key from its credential: '$src'"
done
cred=$(inside $N1 stat -c '%U %a' /run/credentials/pdserve-frontend.service/pdserve-cluster-key)
[ "$cred" = "pdserve 400" ] || fail "the frontend's credential file is '$cred', expected pdserve 400"
echo "ok   node1 started: frontend and prefill0 active; all three daemons took the key from the credential pdserve-cluster-key ($cred in /run/credentials/UNIT/), /etc/pdserve/cluster.key stays root 0600"
# node2's wrong key: the frontend refuses decode0, which keeps retrying and stays activating.
for _ in $(seq 100); do
    inside $N1 journalctl -u pdserve-frontend.service -o cat --no-pager | grep -q "refused the peer at $IP2.*cluster's key" && break
    sleep 0.1
done
ref=$(inside $N1 journalctl -u pdserve-frontend.service -o cat --no-pager | grep "refused the peer at $IP2" | tail -n 1)
[ -n "$ref" ] || fail "decode0 with the wrong cluster key was not refused by the frontend"
[ "$(prop $N2 pdserve-decode@decode0.service ActiveState)" = activating ] || fail "decode0 with the wrong key is $(prop $N2 pdserve-decode@decode0.service ActiveState)"
echo "ok   decode0 with a wrong key: refused (frontend: \"${ref#*ucx: }\"), still activating"
install -m 0600 /dev/stdin "${BOOT_ROOT[$N2]}/etc/pdserve/cluster.key" <<<"$KEY"
inside $N2 timeout 60 systemctl restart pdserve-decode@decode0.service || fail "restarting decode0 with the right key"
[ "$(prop $N2 pdserve-decode@decode0.service ActiveState)" = active ] || fail "decode0 on node2 never became active"
echo "ok   the right key on node2, decode0 restarted: registered across the network and active"
p0=$(prop $N1 pdserve-prefill@prefill0.service MainPID)
cpus=$(inside $N1 awk '/^Cpus_allowed_list/ { print $2 }' /proc/"$p0"/status)
echo "ok   prefill0 pinned by the example's drop-in as written (CPUAffinity=1-15): runs on CPUs $cpus"

for _ in $(seq 100); do [ "$(on_net $N1 curl -s -o /dev/null -w '%{http_code}' "$FE/health")" = 200 ] && break; sleep 0.1; done
prompt=$(printf 'word%d ' $(seq 200))
out=$(on_net $N2 curl -s --max-time 60 "$FE/v1/completions" -d "{\"prompt\":\"$prompt\",\"max_tokens\":16,\"ignore_eos\":true}")
grep -q '"finish_reason":"length"' <<<"$out" || fail "completion across the two hosts: $out"
ptok=$(grep -o '"prompt_tokens":[0-9]*' <<<"$out" | cut -d: -f2)
# The KV of that prompt went from node1 to node2 over UCX's tcp transport: connections between the
# two addresses, on node2's side on the decode listener or the UCX tcp range (printed node2-node1).
conns=$(on_net $N2 ss -Htn state established "( src $IP2 and dst $IP1 )" | awk '{ print $3 "-" $4 }' | sort | tr '\n' ' ')
grep -qE "$IP2:(9100|92[0-9][0-9])-$IP1:" <<<"$conns" || fail "no UCX tcp connection from node1 to node2's 9100/9200-9299: $conns"
echo "ok   a completion ($ptok prompt tokens, prefill on node1, decode on node2) asked from node2's network; tcp between the hosts: $conns"

# Every listener on a documented port (docs/deploy.md, Ports; UCX_TCP_PORT_RANGE=9200-9299).
for n in $N1 $N2; do
    bad=$(on_net $n ss -Htln | awk '{ print $4 }' | grep -vE ':(8000|9000|9100|92[0-9][0-9])$' | grep -v '^127\.0\.0\.53' || true)
    [ -z "$bad" ] || fail "listeners outside the documented ports on $n: $bad"
done
echo "ok   every listener on both hosts is on 8000, 9000, 9100 or 9200-9299"

# The cluster down, host by host (workers' hosts first), every unit exiting 0.
t0=$EPOCHREALTIME
inside $N2 systemctl stop pdserve.target || fail "stop on node2"
inside $N1 systemctl stop pdserve.target || fail "stop on node1"
for pair in "$N1 pdserve-frontend.service" "$N1 pdserve-prefill@prefill0.service" "$N2 pdserve-decode@decode0.service"; do
    read -r n u <<<"$pair"
    for _ in $(seq 450); do [ "$(prop "$n" "$u" ActiveState)" = inactive ] && break; sleep 0.1; done
    stopped_cleanly "$n" "$u" "$t0" || fail "$u on $n did not exit 0: $(inside "$n" journalctl -u "$u" -o cat --no-pager -n 5)"
done
echo "ok   systemctl stop pdserve.target on node2 then node1: every unit exited 0"
boot_stop $N2
boot_stop $N1
for n in $N1 $N2; do
    [ "${BOOT_EXIT[$n]}" = 0 ] || fail "$n did not power off cleanly (systemd-nspawn exit ${BOOT_EXIT[$n]})"
done
echo "ok   both machines powered off"
echo PASS
