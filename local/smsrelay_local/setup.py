"""`smsrelay setup VENDOR --stack NAME`: one vendor ready on a deployed stack (or the local one).

Reads the stack's Outputs, writes the vendor's secret (from prompts or a JSON file) with a callback
token it generates once, and prints what to hand the vendor: the exact push URL(s), what the
vendor pushes and what we answer, and the addresses to put on its IP allow-list.
"""

from __future__ import annotations

import argparse
import getpass
import json
import secrets
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError


class SetupError(RuntimeError):
    """Something the operator must fix; the message says what and how."""


@dataclass(frozen=True)
class PushNotes:
    pushes: str  # what the vendor sends us
    register: str  # what to tell the vendor besides the URL
    allow_lists_ips: bool  # refuses calls from unlisted addresses (its own error code)


# Per vendor: how its pushes look and what it needs to know (vendors.md; the README's table).
PUSH_NOTES: dict[str, PushNotes] = {
    "sms57": PushNotes(
        "POST, a JSON array of reports (flag 1) and replies (flag 0)",
        "register the URL as the report/MO push URL",
        True,
    ),
    "kxt3": PushNotes(
        "POST form fields uid, pwd, type (report|mo), jsonData",
        "register the URL with push_uid / push_pwd as the push credentials (pushes are checked against them)",
        True,
    ),
    "smsadmin": PushNotes(
        "GET or POST, fields in the query string or a form (Class=rpt|mo), GB2312; port 80 only",
        "register the plain-HTTP URL (smsadmin pushes to port 80 only: deploy with CallbackCloudFront=true)",
        False,
    ),
    "intl": PushNotes(
        "POST, one JSON report with appKey / appSecret headers",
        "register the URL; pushes are checked against app_key / app_secret",
        True,
    ),
    "santo": PushNotes(
        "GET query command=RT_REQUEST&msgid=…&da=…&sm=<hex>",
        "register the URL as the RT_REQUEST (delivery report) URL",
        True,
    ),
}

# A vendor without notes of its own yet (a new adapter): what holds for every vendor.
GENERIC_NOTES = PushNotes(
    "its reports and replies, by POST or GET (its adapter's parse_push reads them)",
    "register the URL as its report/MO push URL",
    True,
)

# Settings an operator answers (the vendor's own fields); tuning fields stay for --file.
_PROMPTED_COMMON = ("base_url",)
_TUNING_TYPES = (int, float, bool)


# --------------------------------------------------------------------------- AWS


def aws_session(profile: str | None, region: str | None, endpoint_url: str | None) -> Any:
    import boto3

    session = boto3.session.Session(profile_name=profile, region_name=region)
    if endpoint_url and session.get_credentials() is None:
        # The local stack's emulator takes any key: no account needed.
        session = boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=region or session.region_name or "us-east-1",
        )
    if session.region_name is None:
        if endpoint_url:
            session = boto3.session.Session(profile_name=profile, region_name="us-east-1")
        else:
            raise SetupError("no AWS region: pass --region (or set AWS_REGION / a profile's region)")
    return session


def client(session: Any, service: str, endpoint_url: str | None) -> Any:
    return session.client(service, endpoint_url=endpoint_url)


def stack_outputs(cloudformation: Any, stack: str, region: str) -> dict[str, str]:
    from botocore.exceptions import ClientError, NoCredentialsError

    try:
        answer = cloudformation.describe_stacks(StackName=stack)
    except NoCredentialsError:
        raise SetupError(
            "no AWS credentials: set AWS_PROFILE or pass --profile (for the local stack, --endpoint-url)"
        ) from None
    except ClientError as exc:
        if "does not exist" in str(exc):
            raise SetupError(
                f"no stack {stack!r} in {region}: deploy it first (sam deploy --guided), or pass the right"
                " --stack / --region (--endpoint-url for the local stack)"
            ) from None
        raise SetupError(f"cannot read stack {stack!r}: {exc}") from None
    return {o["OutputKey"]: o["OutputValue"] for o in answer["Stacks"][0].get("Outputs", [])}


def read_secret(secretsmanager: Any, arn: str) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    try:
        text = secretsmanager.get_secret_value(SecretId=arn).get("SecretString") or ""
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":  # created empty by the stack: no value yet
            return {}
        if code == "AccessDeniedException":
            raise SetupError(
                f"not allowed to read {arn}: you need secretsmanager:GetSecretValue and PutSecretValue on it"
            ) from None
        raise SetupError(f"cannot read {arn}: {exc}") from None
    try:
        values = json.loads(text) if text.strip() else {}
    except ValueError:
        raise SetupError(f"{arn} does not hold JSON: fix or clear it, then run setup again") from None
    if not isinstance(values, dict):
        raise SetupError(f"{arn} holds JSON that is not an object: fix or clear it")
    return values


def egress_addresses(outputs: Mapping[str, str], ec2: Any | None) -> tuple[list[str], str]:
    """(addresses, explanation) dispatch and poll call the vendors from."""
    mode = outputs.get("EgressMode", "none")
    if mode == "new-vpc":
        addresses = [a for a in outputs.get("EgressIps", "").split(",") if a]
        return addresses, "the stack's NAT gateways (Elastic IPs)"
    if mode == "existing-subnets":
        subnets = [s for s in outputs.get("EgressSubnets", "").split(",") if s]
        if ec2 is None or not subnets:
            return [], "the NAT addresses of your subnets (not found: no EC2 access)"
        return _nat_addresses(ec2, subnets)
    return [], (
        "none fixed: StaticEgress=none, the functions call from Lambda's shared, changing addresses;"
        " redeploy with StaticEgress=new-vpc or existing-subnets for vendors with an IP allow-list"
    )


def _nat_addresses(ec2: Any, subnets: list[str]) -> tuple[list[str], str]:
    """Follow each subnet's default route to its NAT gateway and that gateway's public address."""
    tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": subnets}])
    by_subnet: dict[str, dict[str, Any]] = {}
    for table in tables["RouteTables"]:
        for association in table.get("Associations", []):
            if association.get("SubnetId") in subnets:
                by_subnet[association["SubnetId"]] = table
    missing = [s for s in subnets if s not in by_subnet]
    if missing:  # no explicit association: the VPC's main route table applies
        vpcs = {s["VpcId"] for s in ec2.describe_subnets(SubnetIds=missing)["Subnets"]}
        mains = ec2.describe_route_tables(
            Filters=[
                {"Name": "vpc-id", "Values": sorted(vpcs)},
                {"Name": "association.main", "Values": ["true"]},
            ]
        )["RouteTables"]
        for subnet in ec2.describe_subnets(SubnetIds=missing)["Subnets"]:
            main = next((t for t in mains if t["VpcId"] == subnet["VpcId"]), None)
            if main:
                by_subnet[subnet["SubnetId"]] = main
    nat_ids: list[str] = []
    other: list[str] = []
    for subnet in subnets:
        route = next(
            (
                r
                for r in by_subnet.get(subnet, {}).get("Routes", [])
                if r.get("DestinationCidrBlock") == "0.0.0.0/0"
            ),
            None,
        )
        if route and route.get("NatGatewayId"):
            nat_ids.append(route["NatGatewayId"])
        else:
            target = next((v for k, v in (route or {}).items() if k.endswith("Id") and v), "no default route")
            other.append(f"{subnet} -> {target}")
    addresses: list[str] = []
    if nat_ids:
        for gateway in ec2.describe_nat_gateways(NatGatewayIds=sorted(set(nat_ids)))["NatGateways"]:
            addresses += [a["PublicIp"] for a in gateway.get("NatGatewayAddresses", []) if a.get("PublicIp")]
    why = "the NAT gateways your subnets route to"
    if other:
        why += "; not through a NAT gateway (give the vendor that path's public address): " + ", ".join(other)
    return sorted(set(addresses)), why


# --------------------------------------------------------------------------- settings


def settings_model(vendor: str) -> type[BaseModel]:
    from smsrelay.vendors import adapter_class

    return adapter_class(vendor).settings_model


def prompted_fields(vendor: str) -> list[tuple[str, Any]]:
    """(name, field) the operator is asked for: base_url and the vendor's own text fields."""
    from smsrelay.vendors import VendorSettings

    model = settings_model(vendor)
    fields = []
    for name, field in model.model_fields.items():
        own = name not in VendorSettings.model_fields
        if not (own or name in _PROMPTED_COMMON):
            continue
        if field.annotation in _TUNING_TYPES or (field.json_schema_extra or {}).get("tuning"):
            continue  # tuning has defaults; set it with --file
        fields.append((name, field))
    return fields


def _is_secret(field: Any) -> bool:
    return SecretStr in (field.annotation, *typing.get_args(field.annotation))


def _choices(field: Any) -> tuple[str, ...]:
    literal = field.annotation if typing.get_origin(field.annotation) is typing.Literal else None
    return tuple(str(v) for v in typing.get_args(literal)) if literal else ()


def ask_settings(
    vendor: str,
    current: Mapping[str, Any],
    ask: Callable[[str], str] = input,
    ask_secret: Callable[[str], str] = getpass.getpass,
) -> dict[str, Any]:
    """Prompt for each field; Enter keeps the current value (or the default)."""
    answers: dict[str, Any] = {}
    for name, field in prompted_fields(vendor):
        required = field.is_required()
        secret = _is_secret(field)
        choices = _choices(field)
        have = current.get(name)
        if have not in (None, ""):
            shown = "keep: ****" if secret else f"keep: {have}"
        elif not required:
            shown = f"default: {field.default}" if field.default not in (None, "") else "optional"
        else:
            shown = "required"
        label = f"{vendor} {name}" + (f" ({'|'.join(choices)})" if choices else "") + f" [{shown}]: "
        while True:
            value = (ask_secret if secret else ask)(label).strip()
            if not value:
                if have in (None, "") and required:
                    print(f"  {name} is required", file=sys.stderr)
                    continue
                break
            if choices and value not in choices:
                print(f"  {name}: one of {', '.join(choices)}", file=sys.stderr)
                continue
            answers[name] = value
            break
    return answers


def load_file(path: str, vendor: str) -> dict[str, Any]:
    """A JSON object with the vendor's settings, or the README's file with a key per vendor."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SetupError(f"{path}: not JSON ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get(vendor), dict):
        data = data[vendor]
    if not isinstance(data, dict):
        raise SetupError(
            f"{path}: expected a JSON object with the {vendor} settings (README, Vendor settings)"
        )
    return data


def merged_settings(
    vendor: str, current: Mapping[str, Any], given: Mapping[str, Any], rotate_token: bool
) -> dict[str, Any]:
    """Current secret + what was given; a callback token generated when there is none (or rotated)."""
    merged = {**current, **given}
    if rotate_token or not merged.get("callback_token"):
        merged["callback_token"] = secrets.token_urlsafe(24)  # 32 URL-safe characters
    try:
        settings_model(vendor).model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(settings)'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise SetupError(
            f"{vendor} settings are not complete: {problems}. Give them in --file, or answer the prompts"
        ) from None
    return merged


# --------------------------------------------------------------------------- the command


@dataclass
class SetupResult:
    vendor: str
    secret_arn: str
    token_rotated: bool
    urls: list[str]
    pushes: str
    answer: dict[str, Any]
    register: str
    egress: list[str]
    egress_note: str
    fields: list[str]

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def setup(
    vendor: str,
    stack: str,
    *,
    session: Any,
    endpoint_url: str | None = None,
    file: str | None = None,
    rotate_token: bool = False,
    interactive: bool = False,
    ask: Callable[[str], str] = input,
    ask_secret: Callable[[str], str] = getpass.getpass,
) -> SetupResult:
    from smsrelay.vendors import VENDOR_IDS, adapter_class

    if vendor not in VENDOR_IDS:
        raise SetupError(f"unknown vendor {vendor!r}: one of {', '.join(VENDOR_IDS)}")
    outputs = stack_outputs(client(session, "cloudformation", endpoint_url), stack, session.region_name)
    names = outputs.get("VendorSecretNames")
    if not names:
        raise SetupError(
            f"stack {stack!r} has no output VendorSecretNames: update it to this version (sam deploy)"
        )
    arn = names.replace("<vendor>", vendor)  # the secret's name: Secrets Manager takes it for its ARN
    secretsmanager = client(session, "secretsmanager", endpoint_url)
    current = read_secret(secretsmanager, arn)
    given = load_file(file, vendor) if file else {}
    if interactive:
        given = {**given, **ask_settings(vendor, {**current, **given}, ask, ask_secret)}
    merged = merged_settings(vendor, current, given, rotate_token)
    secretsmanager.put_secret_value(SecretId=arn, SecretString=json.dumps(merged, ensure_ascii=False))

    token = merged["callback_token"]
    urls = [
        outputs[key].replace("<token>", token)
        for key in (f"{vendor}CallbackUrl", f"{vendor}CallbackHttpUrl")
        if outputs.get(key)
    ]
    if not urls:
        raise SetupError(
            f"stack {stack!r} has no output {vendor}CallbackUrl: add {vendor} to its Vendors parameter (sam deploy)"
        )
    ec2 = client(session, "ec2", endpoint_url) if outputs.get("EgressMode") == "existing-subnets" else None
    addresses, why = egress_addresses(outputs, ec2)
    ack = adapter_class(vendor).push_ack
    notes = PUSH_NOTES.get(vendor, GENERIC_NOTES)
    return SetupResult(
        vendor=vendor,
        secret_arn=arn,
        token_rotated=token != current.get("callback_token"),
        urls=list(dict.fromkeys(urls)),
        pushes=notes.pushes,
        answer={"status": ack.status_code, "content_type": ack.content_type, "body": ack.body},
        register=notes.register,
        egress=addresses,
        egress_note=why,
        fields=sorted(k for k in merged if k != "callback_token"),
    )


def report(result: SetupResult, stack: str) -> str:
    notes = PUSH_NOTES[result.vendor]
    lines = [
        f"{result.vendor}: settings written to {result.secret_arn}",
        f"  fields: {', '.join(result.fields)}; callback token "
        + ("new" if result.token_rotated else "unchanged")
        + " (the functions read the secret again within SecretsMaxAgeSeconds, 300 s by default)",
        "",
        f"Give {result.vendor} this push URL ({result.register}):",
    ]
    lines += [f"  {url}" for url in result.urls]
    if len(result.urls) > 1:
        lines.append("  (the same route over HTTPS and over plain HTTP on port 80, through CloudFront)")
    lines += [
        f"It pushes: {result.pushes}",
        f"We answer: HTTP {result.answer['status']} {result.answer['content_type']} {result.answer['body']}",
        "",
    ]
    if result.egress:
        lines.append(f"Our addresses for {result.vendor}'s IP allow-list: {', '.join(result.egress)}")
        lines.append(f"  ({result.egress_note})")
    else:
        lines.append(f"Our addresses for {result.vendor}'s IP allow-list: {result.egress_note}")
    if notes.allow_lists_ips and not result.egress:
        lines.append(f"  {result.vendor} refuses unlisted addresses: its sends will fail until it lists ours")
    lines.append(f"Check it: aws cloudformation describe-stacks --stack-name {stack} (Outputs)")
    return "\n".join(lines)


def add_parser(commands: Any) -> None:
    from smsrelay.vendors import VENDOR_IDS

    parser = commands.add_parser(
        "setup",
        help="ready one vendor on a stack: secret, callback token, the URL to register, our addresses",
        description=(
            "Writes the vendor's secret on the stack (from prompts, or --file in CI) with a callback token "
            "made once (kept on later runs unless --rotate-token), then prints the callback URL(s) to give "
            "the vendor, what it pushes and what we answer, and our egress addresses for its IP allow-list."
        ),
    )
    parser.add_argument("vendor", choices=VENDOR_IDS)
    parser.add_argument("--stack", required=True, help="the stack name (sam deploy's --stack-name)")
    parser.add_argument(
        "--file",
        metavar="FILE",
        help="JSON settings of the vendor (or the README's file with a key per vendor; - = stdin); no prompts",
    )
    parser.add_argument(
        "--rotate-token", action="store_true", help="make a new callback token (re-register the URL)"
    )
    parser.add_argument("--region", help="AWS region (default: the profile's / AWS_REGION)")
    parser.add_argument("--profile", help="AWS profile")
    parser.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="AWS endpoint, e.g. the local stack's (GET /_local/info: aws_endpoint); dummy keys if none are set",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON (no prompts)")


def run(args: argparse.Namespace) -> int:
    interactive = not args.file and not args.json and sys.stdin.isatty()
    try:
        if not args.file and not interactive:
            raise SetupError(
                "no --file and no terminal to prompt on: give the settings with --file FILE (or -)"
            )
        session = aws_session(args.profile, args.region, args.endpoint_url)
        result = setup(
            args.vendor,
            args.stack,
            session=session,
            endpoint_url=args.endpoint_url,
            file=args.file,
            rotate_token=args.rotate_token,
            interactive=interactive,
        )
    except SetupError as exc:
        print(f"smsrelay setup: {exc}", file=sys.stderr)
        return 1
    print(
        json.dumps(result.as_json(), ensure_ascii=False, indent=2)
        if args.json
        else report(result, args.stack)
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smsrelay")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))
