#!/usr/bin/env bash
# Network namespaces for the end-to-end tests: each is a "remote" machine
# joined to this one by a veth pair, so a test can put an app behind loss,
# a bandwidth cap, (later) NAT and a firewall, with real kernel packet
# handling. Only addresses the script creates are used. Idempotent and
# self-cleaning: `up` first removes what a failed run left under that name.
#
#   tests/netns.sh up <name> <a.b.c>   namespace nexmile-<name>; this host is
#                                      a.b.c.1/24 on veth nx-<name>-h, the
#                                      namespace a.b.c.2/24, routed via .1
#   tests/netns.sh loss <name> <pct>   drop <pct> % of UDP arriving in it (nftables)
#   tests/netns.sh rate <name> <kbit>  cap what arrives in it at <kbit> kbit/s
#                                      (tbf on this host's end: a full queue drops)
#   tests/netns.sh down <name>         remove it (and its veth pair)
#
# Names are <pid>-<n> of the test process; `up` first removes those whose
# process is gone (a run killed before it could clean up).
#
# Needs root, iproute2 and nftables (scripts/setup.sh installs nftables).
set -euo pipefail

cmd=${1:?usage: netns.sh up|loss|rate|down <name> ...}
name=${2:?a namespace name}
ns="nexmile-$name"
# Interface names have 15 characters at most.
host_if="nx-${name:0:9}-h"
ns_if="nx-${name:0:9}-n"

down() {
  ip netns del "$ns" 2>/dev/null || true
  ip link del "$host_if" 2>/dev/null || true
}

sweep() {
  local stale
  for stale in $(ip netns list | awk '{print $1}' | grep -E '^nexmile-[0-9]+-[0-9]+$' || true); do
    local rest=${stale#nexmile-}
    if [ ! -d "/proc/${rest%%-*}" ]; then
      ip netns del "$stale" 2>/dev/null || true
      ip link del "nx-${rest:0:9}-h" 2>/dev/null || true
    fi
  done
}

case "$cmd" in
  up)
    subnet=${3:?the first three octets of the /24}
    sweep
    down
    ip netns add "$ns"
    ip link add "$host_if" type veth peer name "$ns_if"
    ip link set "$ns_if" netns "$ns"
    ip addr add "$subnet.1/24" dev "$host_if"
    ip link set "$host_if" up
    ip -n "$ns" addr add "$subnet.2/24" dev "$ns_if"
    ip -n "$ns" link set "$ns_if" up
    ip -n "$ns" link set lo up
    ip -n "$ns" route add default via "$subnet.1"
    ;;
  loss)
    percent=${3:?a share of packets in percent}
    ip netns exec "$ns" nft -f - <<NFT
table inet nexmile_loss
delete table inet nexmile_loss
table inet nexmile_loss {
  chain arriving {
    type filter hook input priority filter; policy accept;
    meta l4proto udp numgen random mod 100 < $percent drop
  }
}
NFT
    ;;
  rate)
    kbit=${3:?a rate in kbit/s}
    tc qdisc replace dev "$host_if" root tbf rate "${kbit}kbit" burst 4kb latency 100ms
    ;;
  down)
    down
    ;;
  *)
    echo "netns.sh: unknown command $cmd" >&2
    exit 2
    ;;
esac
