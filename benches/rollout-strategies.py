#!/usr/bin/env python3
"""Updates of three replicas under load, by strategy: rolling, blue-green and
recreate, as BENCHMARKS.md's "Updates under load" table quotes them.

    benches/rollout-strategies.py [RUNS]        (3 by default; needs Docker)

It applies a copy of examples/rolling-update (three replicas of a small Python
HTTP service behind HAProxy; its `strategy` variable also allows "recreate"
here) from the Debian base image (scripts/base-image), then, RUNS times, for
each strategy in turn: a new `version` (a new image, so every replica is
replaced) applied with that strategy while a client sends one GET at a time
through the proxy's published 127.0.0.1 port, a new connection each, 10 ms
apart, 5 s timeout, from half a second before the apply until half a second
after it returns. Each update prints the apply's wall time, the requests sent
and the requests failed (refused, timed out, or not a 200); the last lines give
each strategy's median and range over the runs. Debug build, as the e2e tests
run it. Everything it creates is destroyed at the end.
"""

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STRATEGIES = ("rolling", "blue-green", "recreate")


def build():
    target = os.environ.setdefault("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/infra/target"))
    subprocess.run(["cargo", "build", "--quiet", "--manifest-path", os.path.join(REPO, "Cargo.toml")], check=True)
    return os.path.join(target, "debug", "infra")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Load:
    """One request at a time until stopped (at most 5 minutes)."""

    def __init__(self, port):
        self.port, self.sent, self.failed = port, 0, 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.loop)
        self.thread.start()

    def loop(self):
        started = time.monotonic()
        while not self.stopped.is_set() and time.monotonic() - started < 300:
            self.sent += 1
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=5) as answer:
                    answer.read()
                    self.failed += answer.status != 200
            except Exception:
                self.failed += 1
            time.sleep(0.01)

    def finish(self):
        self.stopped.set()
        self.thread.join()
        return self.sent, self.failed


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    infra = build()
    base = subprocess.run(
        ["bash", os.path.join(REPO, "scripts/base-image")], check=True, capture_output=True, text=True
    ).stdout.strip()
    work = tempfile.mkdtemp(prefix="infra-rollout-bench.")
    stack = os.path.join(work, "stack")
    shutil.copytree(os.path.join(REPO, "examples/rolling-update"), stack)
    config = os.path.join(stack, "main.infra")
    with open(config) as f:
        text = f.read()
    allowed = 'contains(["rolling", "blue-green"], var.strategy)'
    assert allowed in text, "the example's strategy validation changed"
    with open(config, "w") as f:
        f.write(text.replace(allowed, 'contains(["rolling", "blue-green", "recreate"], var.strategy)'))
    port = free_port()
    common = ["-var", f"base_image={base}", "-var", f"prefix=bench-rollout-{os.getpid()}", "-var", f"proxy_port={port}"]

    def apply(version, strategy):
        args = [infra, "-chdir", stack, "apply", "-auto-approve", *common]
        args += ["-var", f"version={version}", "-var", f"strategy={strategy}"]
        started = time.monotonic()
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"apply of version {version} ({strategy}) failed:\n{done.stdout}{done.stderr}")
        return time.monotonic() - started

    results = {s: [] for s in STRATEGIES}
    try:
        apply(0, "rolling")
        time.sleep(3)  # the proxy admits the replicas
        version = 0
        for run in range(1, runs + 1):
            for strategy in STRATEGIES:
                version += 1
                load = Load(port)
                time.sleep(0.5)
                wall = apply(version, strategy)
                time.sleep(0.5)
                sent, failed = load.finish()
                results[strategy].append((wall, sent, failed))
                print(f"run {run}, {strategy}: apply {wall:.2f} s, {sent} requests, {failed} failed", flush=True)
                time.sleep(3)  # every replica of the new version admitted before the next update
    finally:
        subprocess.run(
            [infra, "-chdir", stack, "destroy", "-auto-approve", *common], capture_output=True, text=True
        )
        shutil.rmtree(work, ignore_errors=True)

    def summary(values, unit=""):
        return f"{statistics.median(values):g}{unit} ({min(values):g}-{max(values):g})"

    for strategy, rows in results.items():
        walls = [round(w, 2) for w, _, _ in rows]
        print(
            f"{strategy}: apply median {summary(walls, ' s')}, requests median {summary([s for _, s, _ in rows])}, "
            f"failed median {summary([f for _, _, f in rows])}, {len(rows)} runs"
        )


if __name__ == "__main__":
    main()
