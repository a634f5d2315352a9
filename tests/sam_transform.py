"""Print template.yaml as CloudFormation sees it after the SAM transform (JSON), offline.

Runs under the SAM CLI's venv (`make sam-venv`: .venv-sam/bin/python), which has samtranslator:

    .venv-sam/bin/python tests/sam_transform.py template.yaml '{"StaticEgress": "new-vpc"}'

The tests read the IAM roles SAM generates (policy templates expanded, managed policies attached)
from this output, with the conditions of each parameter set resolved by the local stack's reader.
Fn::ForEach is expanded first, as CloudFormation's AWS::LanguageExtensions does before SAM.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class _NoManagedPolicies:
    """The template names no managed policy by name (SAM would look those up in IAM)."""

    def load(self) -> dict[str, str]:
        return {}


def _language_extensions():  # by path: this venv has SAM, not the project's packages
    path = ROOT / "local/smsrelay_local/stack/language_extensions.py"
    spec = importlib.util.spec_from_file_location("language_extensions", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


extensions = _language_extensions()


def main(argv: list[str]) -> int:
    import os

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the translator wants a region, offline
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse(Path(argv[0]).read_text(encoding="utf-8"))
    given = json.loads(argv[1]) if len(argv) > 1 else {}
    if extensions.uses_language_extensions(template):
        defaults = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
        template = extensions.expand(template, defaults | given)
        template["Transform"] = "AWS::Serverless-2016-10-31"
    for resource in template.get("Resources", {}).values():  # local code dirs, as `sam validate` does
        props = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://local-build/{props[key].strip('/')}"
    parameters = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
    parameters |= given
    print(json.dumps(transform(template, parameters, _NoManagedPolicies()), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
