"""The container network's data plane (issue 13): bridges, veth pairs, addresses.

    netlink   an rtnetlink client (links, addresses, routes) over AF_NETLINK
    ipam      IPv4 address management: subnets, gateways, allocation, MACs

The firewall (nftables) and DNS live beside these, and the launcher and the
child call into them; docs/networking.md tells the order.
"""
