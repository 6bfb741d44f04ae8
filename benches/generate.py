#!/usr/bin/env python3
"""Writes the benchmark configuration of N independent `local` `file` resources.

    benches/generate.py N PATH              (an .infra file)
    benches/generate.py N PATH --terraform  (N null_resources, for Terraform)
    benches/generate.py N PATH --modules M  (the same N files as M instances of
                                             one module through `for_each`, the
                                             module written to PATH's directory
                                             under modules/files)
"""
import os
import sys

n, path = int(sys.argv[1]), sys.argv[2]
options = sys.argv[3:]


def flat(f):
    for i in range(n):
        f.write(f'file "f{i}" {{\n  path    = "out/f{i}"\n  content = "resource {i}\\n"\n}}\n\n')


def terraform(f):
    for i in range(n):
        f.write(f'resource "null_resource" "r{i}" {{\n  triggers = {{ content = "resource {i}" }}\n}}\n\n')


def modules(f, m):
    if n % m:
        sys.exit(f"generate: {n} resources do not split into {m} module instances")
    module_dir = os.path.join(os.path.dirname(os.path.abspath(path)), "modules", "files")
    os.makedirs(module_dir, exist_ok=True)
    with open(os.path.join(module_dir, "main.infra"), "w") as module:
        module.write('variable "name" {}\n\n')
        for j in range(n // m):
            module.write(
                f'file "f{j}" {{\n  path    = "out/${{var.name}}/f{j}"\n'
                f'  content = "resource ${{var.name}} {j}\\n"\n}}\n\n'
            )
    keys = "".join(f'    m{i} = "m{i}"\n' for i in range(m))
    f.write(f'locals {{\n  instances = {{\n{keys}  }}\n}}\n\n')
    f.write('module "files" {\n  source   = "./modules/files"\n  for_each = local.instances\n  name     = each.value\n}\n')


with open(path, "w") as f:
    if "--terraform" in options:
        terraform(f)
    elif "--modules" in options:
        modules(f, int(options[options.index("--modules") + 1]))
    else:
        flat(f)
