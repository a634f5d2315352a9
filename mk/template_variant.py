"""Write template.yaml with other parameter defaults, so the linters see an optional mode switched on.

    python3 mk/template_variant.py template.yaml out.yaml StaticEgress=new-vpc CallbackCloudFront=true

cfn-lint weighs every condition by itself, but checkov renders a template with its parameters'
defaults: a mode that is off by default would never be checked. Text in, text out (no YAML
round trip), so the SAM short-form tags and comments stay as they are. Standard library only.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

# Modes the Makefile checks besides the defaults (every optional resource on in one or the other).
VARIANTS: dict[str, dict[str, str]] = {
    "new-vpc-cloudfront": {
        "StaticEgress": "new-vpc",
        "CallbackCloudFront": "true",
        "CallbackWebAclArn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/callbacks/0a1b2c3d",
        "ApiWebAclArn": "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/api/0a1b2c3d",
        "ApiAccessLogs": "true",
        "SendSources": "orders,billing",
        "SendAccountIds": "111122223333",
        "AlarmEmail": "ops@example.com",
    },
    "existing-subnets": {
        "StaticEgress": "existing-subnets",
        "EgressSubnetIds": "subnet-0a1b2c3d4e5f60718,subnet-0f1e2d3c4b5a69788",
        "EgressSecurityGroupIds": "sg-0a1b2c3d4e5f60718",
        "VendorSecretPrefix": "acme/sms/",
    },
}


def with_defaults(text: str, overrides: dict[str, str]) -> str:
    params_at = text.index("\nParameters:\n")
    params_end = re.compile(r"^\S", re.M).search(text, params_at + len("\nParameters:\n"))
    end = params_end.start() if params_end else len(text)
    block = text[params_at:end]
    for name, value in overrides.items():
        entry = re.search(rf"^  {re.escape(name)}:\n((?:    .*\n|\s*\n|  #.*\n)*?)(?=^  \S|\Z)", block, re.M)
        if entry is None:
            raise SystemExit(f"template_variant: no parameter {name}")
        body = entry.group(1)
        if not re.search(r"^    Default: .*$", body, re.M):
            raise SystemExit(f"template_variant: parameter {name} has no Default line")
        new_body = re.sub(
            r"^    Default: .*$", f"    Default: {json.dumps(value)}", body, count=1, flags=re.M
        )
        block = block[: entry.start(1)] + new_body + block[entry.end(1) :]
    return text[:params_at] + block + text[end:]


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    source, target, *pairs = argv
    overrides = dict(VARIANTS.get(pairs[0], {})) if len(pairs) == 1 and "=" not in pairs[0] else {}
    if not overrides:
        for pair in pairs:
            name, sep, value = pair.partition("=")
            if not sep:
                raise SystemExit(
                    f"template_variant: expected NAME=VALUE or a variant ({', '.join(VARIANTS)})"
                )
            overrides[name] = value
    Path(target).write_text(
        with_defaults(Path(source).read_text(encoding="utf-8"), overrides), encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
