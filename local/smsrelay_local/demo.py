"""`make demo`: the whole system on this machine, a realistic mixed batch through every vendor.

Starts the local stack, sends requests over its HTTP API (valid numbers, invalid ones, and test
numbers the simulators fail) and one bulk file (a CSV with {{name}} placeholders uploaded under
`bulk/` of the stack's bucket), waits for delivery reports by push and by poll (the vendors that can
be pulled, sms57 and smsadmin, have their pushes turned off here, so `poll` pulls their reports), then
prints a summary per vendor and each message's status history. Exits 0 when every accepted
recipient reached a final status."""

from __future__ import annotations

import sys
import time
import warnings
from collections import Counter
from typing import Any

import requests
from tqdm import tqdm

from .cli import DropEmf
from .stack import LocalStack
from .stack.local_stack import mask_number

FINAL = {"delivered", "undelivered", "rejected", "failed"}
TIMEOUT_S = 90

# Samples in each vendor's own region; a vendor without one gets GENERIC (the simulators' common
# test numbers: ...0001 delivered, ...4040 undelivered).
SAMPLES: list[dict[str, Any]] = [
    {
        "vendor": "sms57",
        "content": "【Acme】Your code is 4711",
        "recipients": ["+8613800000001", "13800000002", "+8613800004040", "+8613800004220", "12345"],
        "client_ref": "demo-sms57",
    },
    {
        "vendor": "sms57",
        "messages": [
            {"to": "+8613900000001", "content": "【Acme】Hi Ann, your parcel is out for delivery"},
            {"to": "+8613900000002", "content": "【Acme】Hi Bob, your parcel is out for delivery"},
        ],
    },
    {
        "vendor": "kxt3",
        "content": "【Acme】Flash sale today",
        "recipients": ["+8613700000001", "+8613700000002", "+8613700004040", "+86 137 0000 0003"],
    },
    {
        "vendor": "smsadmin",
        "content": "【Acme】会员积分已到账",
        "recipients": ["+8613600000001", "+8613600000002", "+8613600004040", "not-a-number"],
    },
    {
        "vendor": "intl",
        "content": "【Acme】Your order has shipped",
        "recipients": ["+447911123456", "+447911124040", "+14155550100", "+999"],
    },
    {
        "vendor": "santo",
        "content": "【Acme】Your order has shipped",
        "recipients": ["+6591234567", "+6591234040", "+61412345678"],
    },
]


GENERIC = {"content": "【Acme】Your code is 4711", "recipients": ["+8613800000001", "+8613800004040"]}


def requests_for(vendors: list[str]) -> list[dict[str, Any]]:
    """The samples of these vendors, and a generic request for each vendor without a sample."""
    sampled = {r["vendor"] for r in SAMPLES}
    return [r for r in SAMPLES if r["vendor"] in vendors] + [
        {"vendor": v, **GENERIC} for v in vendors if v not in sampled
    ]


def main() -> int:
    started = time.monotonic()
    sys.stdout = DropEmf(sys.stdout)  # type: ignore[assignment]  # the functions' metric lines are not for a console
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    print(
        "smsrelay demo: starting the local stack (moto, the vendor simulators, the functions of template.yaml)"
    )
    with LocalStack(
        port=0, simulator_options={"report_delay_s": 0.5, "seed": 7}, echo=lambda _line: None
    ) as stack:
        from smsrelay.observability import logger

        logger.setLevel("WARNING")  # the functions share this process: keep the console for the demo
        from smsrelay.vendors import Capability, adapter_class

        vendors = [v for v in stack.template_vendors if v in stack.simulators]
        for vendor in vendors:  # the vendors that can be pulled report by pull: poll fetches them
            if Capability.PULL_REPORTS in adapter_class(vendor).capabilities:
                stack.simulators[vendor].push_url = None
        print(f"API: {stack.url}")
        answers = []
        sent = requests_for(vendors)
        for request in sent:
            response = requests.post(f"{stack.url}/messages", json=request, timeout=30)
            response.raise_for_status()
            answers.append((request["vendor"], response.json()))
        message_ids = [(vendor, mid) for vendor, answer in answers for mid in answer["message_ids"]]
        invalid = [(vendor, r) for vendor, answer in answers for r in answer["rejected"]]
        print(
            f"sent {len(sent)} requests: {len(message_ids)} recipients accepted, {len(invalid)} refused at once"
        )
        bulk_ids, bulk_invalid = _bulk_upload(stack)
        message_ids += [("sms57", mid) for mid in bulk_ids]
        invalid += [("sms57", r) for r in bulk_invalid]

        views = _wait(stack, message_ids)
        _print_summary(views, invalid)
        settled = all(view["status"] in FINAL for _, view in views)
    print(f"demo finished in {time.monotonic() - started:.1f}s")
    return 0 if settled else 1


BULK_CSV = b"to,name\n13500000001,Ann\n13500000002,Bob\n13500004040,Cai\n12345,Dee\n"


def _bulk_upload(stack: LocalStack) -> tuple[list[str], list[dict]]:
    """A CSV under bulk/ with the request in its metadata: S3 tells EventBridge, the stack's rule
    puts the event on the send queue, the file is read after the upload (`SMS Request Accepted`)."""
    import json

    request = {
        "content": "【Acme】Hi {{name}}, your coupon is ready",
        "vendor": "sms57",
        "client_ref": "demo-bulk",
    }
    stack.client("s3").put_object(
        Bucket=stack.function_env["BULK_BUCKET"],
        Key="bulk/demo-coupons.csv",
        Body=BULK_CSV,
        Metadata={"smsrelay-request": json.dumps(request)},
    )
    (event,) = stack.wait_for_events(
        lambda e: (
            e.get("detail-type") == "SMS Request Accepted" and e["detail"].get("client_ref") == "demo-bulk"
        ),
        timeout=30,
    )
    request_id = event["detail"]["request_id"]
    view = _get(stack, f"/requests/{request_id}?limit=100")
    rejected = _get(stack, f"/requests/{request_id}/rejections")["rejected"]
    print(
        f"bulk upload bulk/demo-coupons.csv: {view['total']} recipients accepted, "
        f"{len(rejected)} refused (line {', '.join(str(r['row']) for r in rejected)})"
    )
    return [m["message_id"] for m in view["messages"]], rejected


def _wait(stack: LocalStack, message_ids: list[tuple[str, str]]) -> list[tuple[str, dict]]:
    deadline = time.monotonic() + TIMEOUT_S
    last_poll = 0.0
    views: list[tuple[str, dict]] = []
    with tqdm(total=len(message_ids), desc="final statuses", unit="msg", file=sys.stdout) as bar:
        while True:
            views = [(vendor, _get(stack, f"/messages/{mid}")) for vendor, mid in message_ids]
            done = sum(view["status"] in FINAL for _, view in views)
            bar.update(done - bar.n)
            if done == len(views) or time.monotonic() > deadline:
                return views
            if time.monotonic() - last_poll > 2:
                stack.run_schedule("poll")  # reports by pull and by query
                last_poll = time.monotonic()
            time.sleep(0.3)


def _get(stack: LocalStack, path: str) -> dict:
    response = requests.get(stack.url + path, timeout=30)
    response.raise_for_status()
    return response.json()


def _print_summary(views: list[tuple[str, dict]], invalid: list[tuple[str, dict]]) -> None:
    columns = ("submitted", "delivered", "undelivered", "rejected", "failed", "unknown")
    per_vendor: dict[str, Counter[str]] = {}
    for vendor, view in views:
        per_vendor.setdefault(vendor, Counter())[view["status"]] += 1
    refused = Counter(vendor for vendor, _ in invalid)
    print()
    print(f"{'vendor':<10}{'accepted':>9}{'invalid':>9}" + "".join(f"{c:>13}" for c in columns))
    for vendor, counts in per_vendor.items():
        row = f"{vendor:<10}{sum(counts.values()):>9}{refused[vendor]:>9}"
        print(row + "".join(f"{counts[c]:>13}" for c in columns))
    print()
    print("status history per message:")
    for vendor, view in views:
        steps = " -> ".join(
            h["status"] + (f" ({h['code']})" if h.get("code") and h["status"] != "submitted" else "")
            for h in view["history"]
        )
        print(f"  {view['message_id']:<30} {vendor:<9} {mask_number(view['to']):<16} {steps}")
    for vendor, rejected in invalid:
        print(f"  {'(refused at send)':<30} {vendor:<9} {rejected['to']:<16} {rejected['reason'][:60]}")


if __name__ == "__main__":
    sys.exit(main())
