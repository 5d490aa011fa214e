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
#   tests/netns.sh nat <name> <a.b.c>  as `up`, but the namespace is a router
#                                      (a.b.c.2) masquerading for a second one,
#                                      nexmile-<name>-c at 192.168.1.2 behind it:
#                                      a client behind NAT (commands run there)
#   tests/netns.sh drop-udp <name>     a firewall in it that drops all UDP
#   tests/netns.sh udp-only-to <name> <ip> <port>
#                                      ... all UDP but to and from <ip>:<port>
#   tests/netns.sh cut <name>          drop everything in and out of it (a dead link)
#   tests/netns.sh mend <name>         ... and let it through again
#   tests/netns.sh public <name> <private-ip> <public-ip>
#                                      a 1:1 NAT on this host: <public-ip> is
#                                      mapped to <private-ip> (on a link of its own),
#                                      which is not reachable from outside itself
#   tests/netns.sh down <name>         remove what any of these made under <name>
#
# Names are <pid in base 36>-<n> of the test process; `up` first removes
# those whose process is gone (a run killed before it could clean up).
#
# Needs root, iproute2 and nftables (scripts/setup.sh installs nftables).
# Names of processes still running are left alone by `sweep`.
set -euo pipefail

cmd=${1:?usage: netns.sh up|nat|loss|rate|drop-udp|udp-only-to|cut|mend|public|down <name> ...}
name=${2:?a namespace name}
ns="nexmile-$name"
# Interface names have 15 characters at most.
host_if="nx-${name:0:9}-h"
ns_if="nx-${name:0:9}-n"

# nft table names take no dashes.
table="nexmile_${name//-/_}"

remove() {
  local name=$1
  ip netns del "nexmile-$name-c" 2>/dev/null || true
  ip netns del "nexmile-$name" 2>/dev/null || true
  ip link del "nx-${name:0:9}-h" 2>/dev/null || true
  ip link del "nx-${name:0:9}-s" 2>/dev/null || true
  nft delete table ip "nexmile_${name//-/_}" 2>/dev/null || true
}

down() {
  remove "$name"
}

# What runs of processes that are gone left behind.
sweep() {
  local stale
  for stale in $( (ip netns list | awk '{print $1}' | sed -nE 's/^nexmile-([0-9a-z]+-[0-9]+)(-c)?$/\1/p'
                   nft list tables 2>/dev/null | sed -nE 's/^table ip nexmile_([0-9a-z]+)_([0-9]+)$/\1-\2/p') | sort -u); do
    if [ ! -d "/proc/$((36#${stale%%-*}))" ]; then
      remove "$stale"
    fi
  done
}

# A veth pair between this host (subnet.1) and namespace $1 (subnet.2).
link_to_host() {
  local into=$1 subnet=$2
  ip netns add "$into"
  ip link add "$host_if" type veth peer name "$ns_if"
  ip link set "$ns_if" netns "$into"
  ip addr add "$subnet.1/24" dev "$host_if"
  ip link set "$host_if" up
  ip -n "$into" addr add "$subnet.2/24" dev "$ns_if"
  ip -n "$into" link set "$ns_if" up
  ip -n "$into" link set lo up
  ip -n "$into" route add default via "$subnet.1"
}

case "$cmd" in
  up)
    subnet=${3:?the first three octets of the /24}
    sweep
    down
    link_to_host "$ns" "$subnet"
    ;;
  nat)
    subnet=${3:?the first three octets of the /24}
    sweep
    down
    link_to_host "$ns" "$subnet"
    inner="$ns-c"
    ip netns add "$inner"
    ip -n "$ns" link add lan type veth peer name wan netns "$inner"
    ip -n "$ns" addr add 192.168.1.1/24 dev lan
    ip -n "$ns" link set lan up
    ip -n "$inner" addr add 192.168.1.2/24 dev wan
    ip -n "$inner" link set wan up
    ip -n "$inner" link set lo up
    ip -n "$inner" route add default via 192.168.1.1
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$ns" nft -f - <<NFT
table ip nexmile_nat {
  chain leaving {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "$ns_if" masquerade
  }
}
NFT
    ;;
  drop-udp)
    ip netns exec "$ns" nft -f - <<NFT
table inet nexmile_firewall
delete table inet nexmile_firewall
table inet nexmile_firewall {
  chain arriving { type filter hook input priority filter; policy accept; meta l4proto udp drop; }
  chain leaving { type filter hook output priority filter; policy accept; meta l4proto udp drop; }
}
NFT
    ;;
  udp-only-to)
    ip=${3:?an address} port=${4:?a port}
    ip netns exec "$ns" nft -f - <<NFT
table inet nexmile_firewall
delete table inet nexmile_firewall
table inet nexmile_firewall {
  chain arriving {
    type filter hook input priority filter; policy accept;
    ip saddr $ip udp sport $port accept
    meta l4proto udp drop
  }
  chain leaving {
    type filter hook output priority filter; policy accept;
    ip daddr $ip udp dport $port accept
    meta l4proto udp drop
  }
}
NFT
    ;;
  cut)
    ip netns exec "$ns" nft -f - <<NFT
table inet nexmile_cut
delete table inet nexmile_cut
table inet nexmile_cut {
  chain arriving { type filter hook input priority raw; policy drop; }
  chain leaving { type filter hook output priority raw; policy drop; }
}
NFT
    ;;
  mend)
    ip netns exec "$ns" nft delete table inet nexmile_cut 2>/dev/null || true
    ;;
  public)
    private=${3:?the private address} public=${4:?the public address}
    sweep
    down
    # A veth pair of which nothing is plugged in (kernels in containers
    # often lack the dummy link type): the private address is local here.
    ip link add "nx-${name:0:9}-s" type veth peer name "nx-${name:0:9}-t"
    ip addr add "$private/32" dev "nx-${name:0:9}-s"
    ip link set "nx-${name:0:9}-s" up
    ip link set "nx-${name:0:9}-t" up
    nft -f - <<NFT
table ip $table {
  chain unmapped {
    type filter hook prerouting priority raw; policy accept;
    iifname != "lo" ip daddr $private drop
  }
  chain arriving {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr $public dnat to $private
  }
  chain local {
    type nat hook output priority -100; policy accept;
    ip daddr $public dnat to $private
  }
}
NFT
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
