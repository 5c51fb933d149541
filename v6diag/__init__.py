"""v6diag: packet-level IPv6 diagnostics and discovery for Linux."""

__version__ = "0.1.0"
