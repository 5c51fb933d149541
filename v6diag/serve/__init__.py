"""`v6diag serve`: the watchers of conntrack, drops, checksum and discover in one
long-running process, exported to Prometheus (one per node, a DaemonSet)."""
