#!/usr/bin/env python3
"""Times whole commands the way BENCHMARKS.md quotes them: wall-clock seconds
of each run, after warm-up runs that are not counted, as a median and a range.

    benches/timing.py [--runs N] [--warmup W] [--prepare CMD] [--label L] -- CMD
    benches/timing.py [...] --vs CMD_B [--label-b L] -- CMD_A

Each CMD is one shell command line (run by sh -c, output thrown away; a
failing run stops the timing with its output shown). --prepare runs before
every run of every command and is not timed (removing state, say). --cpu
also reports the CPU time the whole machine spent during each run (busy
jiffies of /proc/stat, every process included: for commands whose work is
done by other processes, such as test servers on the same machine). --rss
also reports each run's peak resident memory in MiB (the kernel's ru_maxrss
of the command's process tree, as /usr/bin/time's %M reads it).

With --vs the two commands run alternated, A B A B ..., so a drift in the
machine's speed hits both; the ratio A/B is taken pair by pair and its median
and range printed with each command's own. --difference also prints A - B
pair by pair, in seconds (for "how much longer than": a first apply beyond
the package transaction it contains, say).

Output, one line per command and one for the ratio:
    L: median 0.326 s (range 0.318-0.341 s, 5 runs)
    L / L_B: median 0.017 (range 0.016-0.018, 5 pairs)
    L - L_B: median 1.200 s (range 0.900-1.500 s, 5 pairs)      (--difference)
"""

import argparse
import os
import statistics
import subprocess
import sys
import time


def busy_seconds():
    """CPU seconds the machine has spent not idle (user, nice, system, irq...)."""
    with open("/proc/stat") as stat:
        fields = [int(f) for f in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def run(command):
    """Wall seconds of one run, the machine's busy CPU seconds during it, and
    the peak resident MiB of the command's processes."""
    busy = busy_seconds()
    started = time.monotonic()
    child = subprocess.Popen(["sh", "-c", command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.monotonic() - started
    busy = busy_seconds() - busy
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"timing: `{command}` exited {code}:\n{stderr[-2000:]}")
    return elapsed, busy, usage.ru_maxrss / 1024


def prepare(args):
    if args.prepare:
        subprocess.run(["sh", "-c", args.prepare], check=True, stdout=subprocess.DEVNULL)


def summary(values, unit, what):
    unit = f" {unit}" if unit else ""
    return (
        f"median {statistics.median(values):.3f}{unit} "
        f"(range {min(values):.3f}-{max(values):.3f}{unit}, {len(values)} {what})"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--prepare")
    parser.add_argument("--label")
    parser.add_argument("--vs")
    parser.add_argument("--label-b")
    parser.add_argument("--cpu", action="store_true")
    parser.add_argument("--rss", action="store_true")
    parser.add_argument("--difference", action="store_true")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = " ".join(args.command[1:] if args.command[:1] == ["--"] else args.command)
    if not command:
        parser.error("no command to time")
    commands = [command] + ([args.vs] if args.vs else [])
    labels = [args.label or command, args.label_b or args.vs]
    for _ in range(args.warmup):
        for c in commands:
            prepare(args)
            run(c)
    times = [[] for _ in commands]
    cpu = [[] for _ in commands]
    rss = [[] for _ in commands]
    for _ in range(args.runs):
        for i, c in enumerate(commands):
            prepare(args)
            elapsed, busy, peak = run(c)
            times[i].append(elapsed)
            cpu[i].append(busy)
            rss[i].append(peak)
    for label, values, busy, peak in zip(labels, times, cpu, rss):
        print(f"{label}: {summary(values, 's', 'runs')}")
        if args.cpu:
            print(f"{label}, machine CPU: {summary(busy, 'CPU-s', 'runs')}")
        if args.rss:
            print(f"{label}, peak RSS: {summary(peak, 'MiB', 'runs')}")
    if args.vs:
        ratios = [a / b for a, b in zip(times[0], times[1])]
        print(f"{labels[0]} / {labels[1]}: {summary(ratios, '', 'pairs')}")
        if args.difference:
            differences = [a - b for a, b in zip(times[0], times[1])]
            print(f"{labels[0]} - {labels[1]}: {summary(differences, 's', 'pairs')}")


if __name__ == "__main__":
    main()
