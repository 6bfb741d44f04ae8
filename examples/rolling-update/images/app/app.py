"""Answers GET / with its version and host name, GET /health with ok (or, in a
version named "broken", with 500, to show a rollout that stops). On SIGTERM it
stops accepting, finishes the requests in flight and exits, so a replica that
is being replaced drops nothing."""

import os
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("APP_VERSION", "unknown")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        healthy = VERSION != "broken"
        body = b"ok\n" if self.path == "/health" else f"version {VERSION} from {socket.gethostname()}\n".encode()
        self.send_response(200 if healthy or self.path != "/health" else 500)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True


server = Server(("0.0.0.0", 8000), Handler)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever()
server.server_close()
