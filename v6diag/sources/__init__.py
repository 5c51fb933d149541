"""Sources: the only modules that touch files, sockets, netlink or the kernel."""
