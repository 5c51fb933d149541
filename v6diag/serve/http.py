"""/metrics (prometheus_client's own exposition) and /healthz over HTTP, in a
thread per request so a slow scraper never stalls another."""

from __future__ import annotations

import json
import socket
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from v6diag.core.errors import UnavailableError, UsageError

DEFAULT_LISTEN = "127.0.0.1:9469"  # loopback: exposing it wider is an explicit --listen


def parse_listen(text: str) -> tuple[str, int]:
    """ADDR:PORT, [V6ADDR]:PORT or :PORT (every IPv4 address)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen needs ADDR:PORT, not {text!r}", hint="127.0.0.1:9469, [::]:9469 or 0.0.0.0:9469")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6

    def server_bind(self):
        # [::]:PORT serves IPv4 too, whatever net.ipv6.bindv6only says: a node's
        # scraper may come over either family
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # one line per scrape would drown the state changes
        pass


class Endpoint:
    def __init__(self, listen: str, registry, health):
        host, port = parse_listen(listen)
        metrics = make_wsgi_app(registry)

        def app(environ, start_response):
            path = environ.get("PATH_INFO", "/")
            if path == "/healthz":
                body = json.dumps(health()).encode()
                start_response("200 OK", [("Content-Type", "application/json")])
                return [body]
            if path == "/metrics":
                return metrics(environ, start_response)
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"v6diag serve: /metrics (Prometheus) and /healthz\n"]

        try:
            self.server = make_server(host, port, app, server_class=_Server6 if ":" in host else _Server,
                                      handler_class=_Quiet)
        except OSError as e:
            raise UnavailableError(f"cannot listen on {listen}: {e.strerror}",
                                   hint="another exporter may hold the port: choose one with --listen") from e
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="http", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
