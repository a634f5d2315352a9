"""3. Cold start: `import app` of every function in a fresh interpreter (as Lambda imports it),
against `import boto3` alone; what each handler imports beyond boto3 (its own cost); installed
size of the shared layer (smsrelay + its runtime deps) and of each function."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from .common import FUNCTION_ENV, ROOT, TARGET_IMPORT, Table

_TIMED_IMPORT = (
    "import sys,time;t=time.perf_counter();import {module};sys.stdout.write(repr(time.perf_counter()-t))"
)


def _timed_import(module: str, cwd: Path | None, repeats: int) -> float:
    """Median seconds of `import module` in fresh interpreters (cwd first on sys.path)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))} | FUNCTION_ENV
    if cwd is not None:
        # As the Lambda runtime sets it, with tracing on (the template's `Tracing: Active`). Outside
        # Lambda the X-Ray SDK builds a centralised-sampling client at import (~110 ms) that a
        # function never builds: aws/aws-xray-sdk-python#311.
        env |= {
            "LAMBDA_TASK_ROOT": str(cwd),
            "AWS_LAMBDA_FUNCTION_NAME": cwd.name,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        }
        env.pop("POWERTOOLS_TRACE_DISABLED", None)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "layers" / "shared")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    times = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", _TIMED_IMPORT.format(module=module)],
            cwd=cwd or ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def layer_size() -> dict[str, Any]:
    """smsrelay + its runtime deps as installed here (requirements.txt, recursively; no boto3)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    skip = {"boto3", "botocore", "s3transfer"}
    wanted: list[tuple[str, set[str]]] = []
    for line in (ROOT / "layers" / "shared" / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            wanted.append((req.name, set(req.extras)))
    seen: dict[str, int] = {}
    while wanted:
        name, extras = wanted.pop()
        key = name.lower().replace("_", "-")
        if key in seen or key in skip:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        size = 0
        for file in dist.files or []:
            if "__pycache__" in str(file) or ".dist-info" in str(file.parent):
                continue
            with contextlib.suppress(OSError):
                size += Path(str(file.locate())).stat().st_size
        seen[key] = size
        for raw in dist.requires or []:
            req = Requirement(raw)
            env = {"extra": next(iter(extras), "")}
            if (
                req.marker is None
                or any(req.marker.evaluate({"extra": e}) for e in extras or {""})
                or req.marker.evaluate(env)
            ):
                wanted.append((req.name, set(req.extras)))
    own = _tree_size(ROOT / "layers" / "shared" / "smsrelay")
    return {"bytes": own + sum(seen.values()), "smsrelay_bytes": own, "dependencies": seen}


def run_coldstart(repeats: int = 3) -> dict[str, Any]:
    boto3_s = _timed_import("boto3", None, repeats)
    functions = {}
    for directory in sorted((ROOT / "functions").iterdir()):
        if not (directory / "app.py").is_file():
            continue
        seconds = _timed_import("app", directory, repeats)
        functions[directory.name] = {
            "import_s": seconds,
            "ratio_to_boto3": seconds / boto3_s,
            # what SnapStart would take off a cold start (the handler's imports beyond boto3)
            "beyond_boto3_s": seconds - boto3_s,
            "code_bytes": _tree_size(directory),
        }
    return {"boto3_import_s": boto3_s, "repeats": repeats, "functions": functions, "layer": layer_size()}


def add_rows(table: Table, s: dict[str, Any]) -> None:
    table.row("coldstart", "import boto3 (fresh interpreter)", f"{s['boto3_import_s'] * 1000:.0f} ms")
    for name, fn in s["functions"].items():
        verdict = table.target(f"cold import {name}", fn["ratio_to_boto3"], TARGET_IMPORT, False)
        table.row(
            "coldstart",
            f"import app: {name}",
            f"{fn['import_s'] * 1000:.0f} ms",
            f"{fn['ratio_to_boto3']:.2f}x boto3 (<= 1.5x); its own +{fn['beyond_boto3_s'] * 1000:.0f} ms;"
            f" code {fn['code_bytes'] / 1024:.1f} KB",
            verdict,
        )
    layer = s["layer"]
    table.row(
        "coldstart",
        "shared layer installed size",
        f"{layer['bytes'] / 2**20:.1f} MB",
        f"smsrelay {layer['smsrelay_bytes'] / 1024:.0f} KB + {len(layer['dependencies'])} dists",
    )
