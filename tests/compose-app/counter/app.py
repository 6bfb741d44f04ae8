"""Counts visits in a file (STORE), or with --upstream forwards to a counter."""
import json
import os
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

ARGS = sys.argv[1:]
UPSTREAM = ARGS[ARGS.index("--upstream") + 1] if "--upstream" in ARGS else None


def count():
    store = os.environ["STORE"]
    visits = int(open(store).read()) + 1 if os.path.exists(store) else 1
    with open(store, "w") as f:
        f.write(str(visits))
    return {"greeting": os.environ.get("GREETING", ""), "visits": visits}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if UPSTREAM:
            with urllib.request.urlopen(UPSTREAM, timeout=5) as answer:
                body = {"via": "web", "counter": json.load(answer)}
        elif self.path == "/health":
            body = {"ok": True}
        else:
            body = count()
        data = json.dumps(body, sort_keys=True).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if "--check" in ARGS:
    urllib.request.urlopen("http://127.0.0.1:8000/health", timeout=2)
    sys.exit(0)
HTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
