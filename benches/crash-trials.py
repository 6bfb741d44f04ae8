#!/usr/bin/env python3
"""Crash trials: `kill -9` of `infra apply` at random points in the whole apply
window, then one apply, a plan and a destroy, counted.

    benches/crash-trials.py BACKEND [TRIALS] [SEED]    (BACKEND: local, docker, ssh or aws)

The window is measured first: one uninterrupted apply of the same configuration,
timed. Each trial then kills a fresh apply after a delay drawn uniformly from
[0, window) (the seed is printed; passing it replays the same delays) and
records whether the kill landed mid-apply: the killed run did not print
"Apply complete!" and its state recorded fewer resources than the configuration
has. A trial is clean when, after the kill, one `infra apply` exits 0, the plan
after it has no changes (`-detailed-exitcode` 0), every resource is recorded
once, and `infra destroy` leaves nothing of the trial behind (Docker: no
container, network or volume with the state's lineage label; AWS: nothing
tagged with it in moto; SSH: no file, directory or user of the configuration
on any server; local: no file).

The last line is the figure RELIABILITY.md quotes:
    BACKEND: clean N of M, killed mid-apply K of M (window W s, seed S)

Workloads: local, 200 files, a directory and an index file; docker, one network
and `container "c" { count = 20 }` running /bin/sleep from the Debian base image
(scripts/base-image); ssh, three test servers (scripts/server-image, SSH on
127.0.0.1) each with a user, a directory and 10 files of 70 kB; aws, a VPC, a
subnet, a security group, a key pair, 20 instances and a volume on moto
(scripts/moto-server on 127.0.0.1). Every trial works in its own directory with
names of its own; whatever a failed trial leaves is removed at the end.
"""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build():
    target = os.environ.setdefault("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/infra/target"))
    subprocess.run(["cargo", "build", "--quiet", "--manifest-path", os.path.join(REPO, "Cargo.toml")], check=True)
    return os.path.join(target, "debug", "infra")


class Local:
    name = "local"
    resources = 202

    def config(self, tag):
        return (
            'directory "out" {\n  path = "out"\n}\n\n'
            'file "item" {\n  count   = 200\n  path    = "${directory.out.path}/item-${count.index}"\n'
            '  content = "item ${count.index}\\n"\n}\n\n'
            'file "index" {\n  path    = "index"\n  content = join("\\n", file.item[*].path)\n}\n'
        )

    def leftovers(self, workdir, lineage):
        out = os.path.join(workdir, "out")
        left = os.listdir(out) if os.path.isdir(out) else []
        return left + (["index"] if os.path.exists(os.path.join(workdir, "index")) else [])

    def remove(self, lineage):
        pass


class Docker:
    name = "docker"
    resources = 21

    def __init__(self):
        self.image = subprocess.run(
            ["bash", os.path.join(REPO, "scripts/base-image")], check=True, capture_output=True, text=True
        ).stdout.strip()

    def config(self, tag):
        return (
            f'network "n" {{\n  name = "crash-{tag}"\n}}\n\n'
            f'container "c" {{\n  count    = 20\n  name     = "crash-{tag}-c${{count.index}}"\n'
            f'  image    = "{self.image}"\n  command  = ["/bin/sleep", "3600"]\n'
            f"  networks = [network.n.name]\n}}\n"
        )

    def labelled(self, lineage):
        found = []
        label = f"label=infra.lineage={lineage}"
        for listing in (["ps", "-aq"], ["network", "ls", "-q"], ["volume", "ls", "-q"]):
            out = subprocess.run(["docker", *listing, "--filter", label], capture_output=True, text=True).stdout
            found += [f"{listing[0]} {line}" for line in out.split()]
        return found

    def leftovers(self, workdir, lineage):
        return self.labelled(lineage) if lineage else []

    def remove(self, lineage):
        label = f"label=infra.lineage={lineage}"
        for listing, removal in ((["ps", "-aq"], ["rm", "-f"]), (["network", "ls", "-q"], ["network", "rm"])):
            ids = subprocess.run(["docker", *listing, "--filter", label], capture_output=True, text=True).stdout.split()
            if ids:
                subprocess.run(["docker", *removal, *ids], capture_output=True)


class Ssh:
    name = "ssh"
    servers = 3
    files = 10
    resources = 3 * (3 + 10)  # per server: the server, a user, a directory, 10 files

    def __init__(self, root):
        image = subprocess.run(
            ["bash", os.path.join(REPO, "scripts/server-image")], check=True, capture_output=True, text=True
        ).stdout.strip()
        self.key = os.path.join(root, "id_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.key], check=True)
        self.ids = []
        for _ in range(self.servers):
            cid = subprocess.run(
                ["docker", "run", "-d", "--label", "infra-bench=crash", "-p", "127.0.0.1::22", image],
                check=True, capture_output=True, text=True,
            ).stdout.strip()
            self.ids.append(cid)
            with open(self.key + ".pub", "rb") as public:
                subprocess.run(
                    ["docker", "exec", "-i", cid, "sh", "-c", "cat > /root/.ssh/authorized_keys"],
                    stdin=public, check=True,
                )
        self.ports = []
        for cid in self.ids:
            mapping = subprocess.run(["docker", "port", cid, "22/tcp"], capture_output=True, text=True).stdout
            self.ports.append(int(mapping.split()[0].rsplit(":", 1)[1]))
            deadline = time.monotonic() + 30
            while self.sh(cid, "pgrep -x sshd >/dev/null && echo up") != "up":
                if time.monotonic() > deadline:
                    sys.exit("a test server's sshd never started")
                time.sleep(0.2)
        self.host_keys = [" ".join(self.sh(c, "cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2]) for c in self.ids]

    @staticmethod
    def sh(cid, script):
        return subprocess.run(["docker", "exec", cid, "sh", "-c", script], capture_output=True, text=True).stdout.strip()

    def config(self, tag):
        line = "x" * 69 + "\\n"
        parts = []
        for i, port in enumerate(self.ports):
            parts.append(
                f'server "s{i}" {{\n  host        = "127.0.0.1"\n  port        = {port}\n'
                f'  private_key = "{self.key}"\n  host_key    = "{self.host_keys[i]}"\n}}\n\n'
                f'user "u{i}" {{\n  server = server.s{i}\n  name   = "crash{i}"\n}}\n\n'
                f'directory "d{i}" {{\n  server = server.s{i}\n  path   = "/srv/crash"\n}}\n\n'
                f'file "f{i}" {{\n  count   = {self.files}\n  server  = server.s{i}\n'
                f'  path    = "${{directory.d{i}.path}}/item-${{count.index}}"\n'
                f'  content = join("", [for n in range(1000) : "{line}"])\n}}\n\n'
            )
        return "".join(parts)

    def leftovers(self, workdir, lineage):
        left = []
        for i, cid in enumerate(self.ids):
            if self.sh(cid, "ls -A /srv/crash 2>/dev/null; id crash%d >/dev/null 2>&1 && echo user" % i):
                left.append(f"s{i}")
        return left

    def remove(self, lineage):
        for i, cid in enumerate(self.ids):
            self.sh(cid, "rm -rf /srv/crash; userdel -r crash%d 2>/dev/null; true" % i)

    def close(self):
        subprocess.run(["docker", "rm", "-f", *self.ids], capture_output=True)


class Aws:
    name = "aws"
    resources = 4 + 20 + 1  # a VPC, a subnet, a security group, a key pair, 20 instances, a volume

    def __init__(self):
        self.moto = subprocess.Popen(
            ["python3", os.path.join(REPO, "scripts/moto-server")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self.endpoint = "http://" + self.moto.stdout.readline().strip().removeprefix("listening on ")
        os.environ.update(
            AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_EC2_METADATA_DISABLED="true",
            INFRA_VAR_aws_endpoint=self.endpoint,
        )

    def config(self, tag):
        return (
            'variable "aws_endpoint" {\n  type = string\n}\n\n'
            'provider "aws" {\n  region   = "eu-west-1"\n  endpoint = var.aws_endpoint\n}\n\n'
            'vpc "main" {\n  cidr = "10.42.0.0/16"\n}\n\n'
            'subnet "public" {\n  vpc  = vpc.main.id\n  cidr = cidrsubnet(vpc.main.cidr, 8, 1)\n}\n\n'
            'firewall "web" {\n  vpc = vpc.main.id\n  rule "web" {\n    port = [80, 443]\n  }\n}\n\n'
            f'key_pair "admin" {{\n  name       = "crash-{tag}"\n'
            '  public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ4cTJ2bWx0cXF2c3p0a3R6c2t0cXF2c3p0a3R6c2t0 test"\n}\n\n'
            'instance "web" {\n  count           = 20\n  ami             = "ami-12c6146b"\n'
            '  type            = "t3.small"\n  subnet          = subnet.public.id\n'
            '  security_groups = [firewall.web.id]\n  key_name        = key_pair.admin.name\n}\n\n'
            'volume "data" {\n  availability_zone = instance.web[0].availability_zone\n  size              = 20\n}\n'
        )

    def tagged(self, lineage):
        out = subprocess.run(
            ["python3", os.path.join(REPO, "tests/e2e/aws_inspect.py"), self.endpoint, "tagged", lineage],
            capture_output=True, text=True,
        ).stdout
        return [f"{kind} {i}" for kind, ids in json.loads(out or "{}").items() for i in ids]

    def leftovers(self, workdir, lineage):
        return self.tagged(lineage) if lineage else []

    def remove(self, lineage):
        pass  # moto goes with this run

    def close(self):
        self.moto.terminate()


def lineage_of(workdir):
    try:
        with open(os.path.join(workdir, "infra.state")) as f:
            return json.load(f).get("lineage")
    except (OSError, ValueError):
        return None


def keep_log(workdir, step, run):
    """Keeps a failed step's whole output beside the trial's killed apply, in
    /tmp (the trial directories are removed at the end), and says where."""
    kept = os.path.join(tempfile.gettempdir(), f"crash-{os.path.basename(os.path.dirname(workdir))}-{os.path.basename(workdir)}-{step}.log")
    with open(kept, "w") as f:
        f.write(run.stdout + run.stderr)
    return kept


def first_error(stderr):
    """The first diagnostic's headline (`× address: what failed`), for the trial's line."""
    lines = stderr.strip().splitlines()
    headline = next((line.split("×", 1)[1].strip() for line in lines if "×" in line), None)
    return headline or (lines[-1] if lines else "?")


def run(infra, workdir, *args):
    return subprocess.run([infra, "-chdir", workdir, *args], capture_output=True, text=True, timeout=600)


def recorded(infra, workdir):
    listed = run(infra, workdir, "state", "list")
    return len(listed.stdout.split()) if listed.returncode == 0 else 0


def trial(infra, backend, workdir, tag, delay):
    """One kill and what came after it: (mid_apply, clean, what went wrong)."""
    with open(os.path.join(workdir, "main.infra"), "w") as f:
        f.write(backend.config(tag))
    out = open(os.path.join(workdir, "killed-apply.log"), "w+")
    child = subprocess.Popen([infra, "-chdir", workdir, "apply", "-auto-approve", "-no-color"], stdout=out, stderr=out)
    time.sleep(delay)
    child.kill()
    child.wait()
    out.seek(0)
    finished = "Apply complete!" in out.read()
    mid_apply = not finished and recorded(infra, workdir) < backend.resources
    try:
        return (mid_apply, *converges(infra, backend, workdir))
    finally:
        # Whatever a failed or interrupted trial left, by the state's lineage.
        if lineage_of(workdir):
            backend.remove(lineage_of(workdir))


def converges(infra, backend, workdir):
    """After a kill: one apply, the plan, destroy, and what is left: (clean, problems)."""
    problems = []
    apply = run(infra, workdir, "apply", "-auto-approve", "-no-color")
    if apply.returncode != 0:
        problems.append(f"the next apply failed ({keep_log(workdir, 'apply', apply)}): " + first_error(apply.stderr))
    plan = run(infra, workdir, "plan", "-detailed-exitcode", "-no-color")
    if plan.returncode != 0:
        problems.append(f"the plan after it exited {plan.returncode}")
    count = recorded(infra, workdir)
    if count != backend.resources:
        problems.append(f"{count} of {backend.resources} resources recorded")
    lineage = lineage_of(workdir)
    destroy = run(infra, workdir, "destroy", "-auto-approve", "-no-color")
    if destroy.returncode != 0:
        problems.append(f"destroy failed ({keep_log(workdir, 'destroy', destroy)}): " + first_error(destroy.stderr))
    left = backend.leftovers(workdir, lineage)
    if left:
        problems.append(f"left after destroy: {', '.join(left[:5])}")
    return not problems, problems


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("local", "docker", "ssh", "aws"):
        sys.exit(__doc__)
    trials = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else random.SystemRandom().randrange(1 << 32)
    infra = build()
    root = tempfile.mkdtemp(prefix=f"infra-crash-{sys.argv[1]}.")
    backends = {"local": Local, "docker": Docker, "ssh": lambda: Ssh(root), "aws": Aws}
    backend = backends[sys.argv[1]]()
    try:
        # The window: one whole apply, uninterrupted.
        measure = os.path.join(root, "window")
        os.mkdir(measure)
        with open(os.path.join(measure, "main.infra"), "w") as f:
            f.write(backend.config(f"w{seed}"))
        started = time.monotonic()
        run(infra, measure, "apply", "-auto-approve").check_returncode()
        window = time.monotonic() - started
        lineage = lineage_of(measure)
        run(infra, measure, "destroy", "-auto-approve").check_returncode()
        backend.remove(lineage)
        rng = random.Random(seed)
        clean = mid = 0
        for i in range(trials):
            delay = rng.uniform(0, window)
            workdir = os.path.join(root, f"t{i}")
            os.mkdir(workdir)
            was_mid, was_clean, problems = trial(infra, backend, workdir, f"{seed}-{i}", delay)
            clean += was_clean
            mid += was_mid
            verdict = "clean" if was_clean else "NOT CLEAN: " + "; ".join(problems)
            print(f"trial {i + 1}: kill after {delay:.2f} s, {'mid-apply' if was_mid else 'after the apply'}: {verdict}")
            sys.stdout.flush()
        print(
            f"{backend.name}: clean {clean} of {trials}, killed mid-apply {mid} of {trials} "
            f"(window {window:.2f} s, seed {seed})"
        )
        sys.exit(0 if clean == trials else 1)
    finally:
        getattr(backend, "close", lambda: None)()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
