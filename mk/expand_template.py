"""Write a template with its Fn::ForEach loops expanded (JSON), as CloudFormation's
AWS::LanguageExtensions expands them before the SAM transform:

    .venv/bin/python mk/expand_template.py template.yaml out.json

checkov does not expand Fn::ForEach (it skips the loops with a warning), so `make checkov` scans
this instead: every vendor's receiver, log group, secret and alarm, parameters at their defaults.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cfn_flip import load_yaml
from smsrelay_local.stack.language_extensions import expand


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    template = load_yaml(Path(argv[0]).read_text(encoding="utf-8"))
    defaults = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    expanded = expand(template, defaults)
    expanded["Transform"] = "AWS::Serverless-2016-10-31"  # the loops are gone
    Path(argv[1]).write_text(json.dumps(expanded, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
