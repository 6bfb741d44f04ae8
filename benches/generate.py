#!/usr/bin/env python3
"""Writes the benchmark configuration of N independent `local` `file` resources.

    benches/generate.py N PATH            (an .infra file)
    benches/generate.py N PATH --terraform (N null_resources, for Terraform)
"""
import sys

n, path = int(sys.argv[1]), sys.argv[2]
terraform = "--terraform" in sys.argv[3:]
with open(path, "w") as f:
    for i in range(n):
        if terraform:
            f.write(f'resource "null_resource" "r{i}" {{\n  triggers = {{ content = "resource {i}" }}\n}}\n\n')
        else:
            f.write(f'file "f{i}" {{\n  path    = "out/f{i}"\n  content = "resource {i}\\n"\n}}\n\n')
