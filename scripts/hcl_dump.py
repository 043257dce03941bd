"""Print the Terraform configuration of a folder tree as JSON: {relative dir: {"variables": ..., "modules": ...}}.

Run with the python of .tools/py (python-hcl2 lives there, apart from checkov's bc-python-hcl2): the tests in
tests/deploy read its output to check that every module is used by the root and given its required variables.
Usage: .tools/py/bin/python scripts/hcl_dump.py deploy/terraform
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hcl2  # python-hcl2 >= 8

META_ARGUMENTS = {"source", "count", "for_each", "providers", "depends_on", "version"}
OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)


def _unquote(name: str) -> str:
    return name.strip('"')


def folder(path: Path) -> dict[str, object]:
    variables: dict[str, dict[str, bool]] = {}
    modules: dict[str, dict[str, object]] = {}
    for tf in sorted(path.glob("*.tf")):
        with tf.open() as handle:
            data = hcl2.load(handle, serialization_options=OPTIONS)
        for block in data.get("variable", []):
            for name, body in block.items():
                variables[_unquote(name)] = {"required": "default" not in body}
        for block in data.get("module", []):
            for name, body in block.items():
                modules[_unquote(name)] = {
                    "source": body.get("source"),
                    "arguments": sorted(k for k in body if k not in META_ARGUMENTS),
                }
    return {"variables": variables, "modules": modules}


def main(root: str) -> None:
    base = Path(root)
    dirs = sorted({tf.parent for tf in base.rglob("*.tf") if ".terraform" not in tf.parts})
    print(json.dumps({str(d.relative_to(base)): folder(d) for d in dirs}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
