#!/usr/bin/env python3
"""The request loop of benches/update-vs-compose.sh: one GET at a time to
127.0.0.1:PORT, a new connection each, 10 ms apart, 5 s timeout, until the
answer carries GREETING (then half a second more) or 120 s have passed.
Writes "SENT FAILED" to OUT."""

import sys
import time
import urllib.request

port, greeting, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sent = failed = 0
started = time.monotonic()
seen_new = None
while time.monotonic() - started < 120:
    if seen_new is not None and time.monotonic() - seen_new > 0.5:
        break
    sent += 1
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
            body = answer.read().decode()
            if answer.status != 200:
                failed += 1
            elif f'"{greeting}"' in body and seen_new is None:
                seen_new = time.monotonic()
    except Exception:
        failed += 1
    time.sleep(0.01)
with open(out, "w") as f:
    f.write(f"{sent} {failed}\n")
