"""template.yaml as plain CloudFormation, offline: the SAM transform applied by samtranslator (the library
`sam deploy` uses), with each function's and layer's code at an s3:// placeholder. Runs in the tools
virtualenv (`.venv-tools/bin/python -m infra.translate > template.json`); tests create the result on moto.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

BUCKET = "loyalty-artifacts"


class _NoManagedPolicies:
    """The translator looks up AWS managed policies by name; the template names none, so no IAM call."""

    def load(self) -> dict[str, str]:
        return {}


def translate(template: Path) -> dict[str, Any]:
    sam = yaml_parse(template.read_text())
    for name, resource in sam["Resources"].items():
        properties = resource.get("Properties", {})
        for code in ("CodeUri", "ContentUri"):
            if code in properties:
                properties[code] = f"s3://{BUCKET}/{name}.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return transform(sam, {}, _NoManagedPolicies())


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    json.dump(translate(root / "template.yaml"), sys.stdout, indent=1, default=str)
