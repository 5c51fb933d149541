"""Protocol numbers, ports and limits, written once: every command reads them here."""

from __future__ import annotations

# pcap link types (tcpdump.org/linktypes.html)
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # bare IPv4/IPv6, no link header (PPP, tunnels)
LINKTYPE_LINUX_SLL = 113  # `tcpdump -i any`, libpcap < 1.10
LINKTYPE_LINUX_SLL2 = 276

# EtherTypes (IEEE 802, IANA)
ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_IPV6 = 0x86DD
# 802.1Q, 802.1ad, and the pre-standard QinQ outer tag many switches still send
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
MAX_VLAN_TAGS = 2  # QinQ; a third tag is not looked through

# AF_PACKET (linux/if_ether.h, linux/if_packet.h) and device types (linux/if_arp.h)
ETH_P_ALL = 0x0003
ETH_P_IPV6 = ETH_IPV6
PACKET_OUTGOING = 4
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772

# IP protocol numbers (IANA); names as conntrack and nft print them
PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_IPV6_IN_IP = 41  # 6in4 (RFC 4213) and ip6ip6 (RFC 2473)
PROTO_GRE = 47
PROTO_ICMPV6 = 58
PROTO_NAMES = {PROTO_ICMP: "icmp", PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_IPV6_IN_IP: "ipv6",
               PROTO_GRE: "gre", PROTO_ICMPV6: "icmpv6", 132: "sctp", 136: "udplite"}
PROTO_NUMBERS = {**{name: n for n, name in PROTO_NAMES.items()}, "ipv6-icmp": PROTO_ICMPV6}
# IPv6 extension headers that can be stepped over to the upper layer (RFC 8200 4.1)
IPV6_EXT_SKIPPABLE = (0, 43, 60)  # hop-by-hop, routing, destination options
IPV6_EXT_FRAGMENT = 44
IPV6_MAX_EXT_HEADERS = 8  # a longer chain is hostile: stop walking

IPV6_MIN_MTU = 1280  # RFC 8200 5: every IPv6 link carries 1280-byte packets
ND_HOP_LIMIT = 255  # RFC 4861 7.1.1: ND from off-link is discarded

VXLAN_PORTS = (4789, 8472)  # IANA; Linux/flannel's historical default
WIREGUARD_PORTS = (51820,)
DHCPV6_CLIENT_PORT, DHCPV6_SERVER_PORT = 546, 547
