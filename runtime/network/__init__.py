"""The container network (issue 13): data plane and control plane.

    netlink    an rtnetlink client (links, addresses, routes) over AF_NETLINK
    rtnl       rtnetlink's message format: request encoding, reply decoding
    ipam       IPv4 address management: subnets, gateways, allocation, MACs
    firewall   the service's nftables table (inet mydocker): NAT, isolation, published ports
    nftables   running an nft script: libnftables through ctypes, or nft -f -
    ports      host ports held by bound sockets while their container lives
    dns        the embedded DNS server: per-network names, the rest forwarded
    etcfiles   a container's resolv.conf, hosts and hostname

The launcher, the child and the runtime call into them; docs/networking.md
tells the order.
"""
