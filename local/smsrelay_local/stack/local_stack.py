"""LocalStack: the whole of smsrelay on loopback, built from template.yaml.

moto (server mode) for the AWS services, the template's functions invoked in-process as Lambda
would (API routes, SQS event-source mappings, schedules), EventBridge targets relayed, and the
five vendor simulators pushing to the local callback URLs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from werkzeug.wrappers import Request, Response

from ..simulators import SIMULATED, VendorSimulator, simulator_class
from .api import ApiServer, json_response
from .emulator import AwsEmulator
from .event_log import EventLog
from .lambdas import FunctionError, LocalFunction
from .resources import ResourceBuilder, RuleTarget
from .schedules import ScheduleRunner, scheduled_event
from .secrets_mirror import SecretsMirror
from .sqs import QueueDrain, SqsPoller, transform_input
from .template import DEFAULT_STACK_NAME, ApiRoute, Schedule, SqsMapping, Template, TemplateError

log = logging.getLogger("smsrelay.local")

VENDORS: tuple[str, ...] = SIMULATED
_CALLBACK_PATH = re.compile(r"/callbacks/([a-z0-9]+)/\{token\}")
STATUS_CHANGED = "SMS Status Changed"
SOURCE = "smsrelay"
# Set for every function locally: there is no X-Ray daemon.
LOCAL_ENV = {"POWERTOOLS_TRACE_DISABLED": "true"}


def default_template() -> Path:
    """template.yaml of the current directory, else of the repository this package lives in."""
    here = Path.cwd() / "template.yaml"
    if here.is_file():
        return here
    return Path(__file__).resolve().parents[3] / "template.yaml"


def mask_number(number: str) -> str:
    """+8613800000001 -> +86138****0001."""
    if len(number) <= 8:
        return number
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def status_line(detail: dict[str, Any]) -> str:
    """One readable console line for an `SMS Status Changed` event."""
    when = detail.get("time") or ""
    with contextlib.suppress(ValueError):
        when = dt.datetime.fromisoformat(str(when).replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S")
    previous = detail.get("previous_status") or "-"
    code = detail.get("vendor_code")
    return (
        f"{when}  {detail.get('message_id', '?')}  {mask_number(str(detail.get('to', '')))}  "
        f"{detail.get('vendor') or '-':<8}  {previous} -> {detail.get('status')}"
        + (f"  ({code})" if code else "")
    )


class LocalStack:
    """smsrelay on this machine. Use as a context manager, or start()/stop()."""

    _active: ClassVar[LocalStack | None] = None  # os.environ and moto are process-wide: one at a time
    _active_lock: ClassVar[threading.Lock] = threading.Lock()
    #: how long stop() waits for its workers in all (an invocation in flight is not waited for)
    STOP_WAIT_S: ClassVar[float] = 10.0

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        template: str | Path | None = None,
        settings_file: str | Path | None = None,
        settings: dict[str, dict[str, Any]] | None = None,
        parameters: dict[str, str] | None = None,
        simulators: bool | Iterable[str] = True,
        simulator_options: dict[str, Any] | None = None,
        schedule_scale: float | None = None,
        sqs_concurrency: int = 4,
        env: dict[str, str] | None = None,
        echo: Callable[[str], None] | None = None,
        stack_name: str = DEFAULT_STACK_NAME,
        publish_stack: bool = False,
    ) -> None:
        """`publish_stack`: describe the stack (its resolved Outputs) in the emulator's CloudFormation
        and follow changes to the vendor secrets, so that `smsrelay setup --endpoint-url` works on
        it as on a deployed stack (costs ~3 s at start: moto's CloudFormation imports)."""
        self.host, self.port = host, port
        self.template_path = Path(template) if template else default_template()
        self.settings_file = Path(settings_file) if settings_file else None
        self.settings_overrides = settings or {}
        self.parameters = parameters or {}
        self.simulated_vendors = set(VENDORS if simulators is True else (simulators or ()))
        self.simulator_options = simulator_options or {}
        scale = (
            schedule_scale
            if schedule_scale is not None
            else os.environ.get("SMSRELAY_LOCAL_SCHEDULE_SCALE", "1")
        )
        self.schedule_scale = float(scale)
        self.sqs_concurrency = sqs_concurrency
        self.env_overrides = env or {}
        self.echo = echo
        self.stack_name = stack_name
        self.publish_stack = publish_stack
        self.ready = False

        self.template: Template | None = None
        self.aws = AwsEmulator(host)
        self.functions: dict[str, LocalFunction] = {}
        self.routes: list[ApiRoute] = []
        self.mappings: list[SqsMapping] = []
        self.schedules: list[Schedule] = []
        self.simulators: dict[str, VendorSimulator] = {}
        self.vendor_settings: dict[str, dict[str, Any]] = {}
        self.callback_urls: dict[str, str] = {}
        self.settings_path: Path | None = None
        self.function_env: dict[str, str] = {}
        self.env_conflicts: list[str] = []
        self.template_vendors: list[str] = []
        self.stage = "Prod"
        self.event_log = EventLog()
        self._pollers: list[SqsPoller] = []
        self._drains: list[QueueDrain] = []
        self._runners: list[ScheduleRunner] = []
        self._api: ApiServer | None = None
        self._builder: ResourceBuilder | None = None
        self._tmpdir: Path | None = None
        self._saved_env: dict[str, str | None] = {}
        self._clients: dict[str, Any] = {}
        self._event_buses: set[str] = set()
        self._mirror: SecretsMirror | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalStack:
        with LocalStack._active_lock:
            if LocalStack._active is not None:
                raise RuntimeError("another LocalStack is running in this process; stop it first")
            LocalStack._active = self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        endpoint = self.aws.start()
        # Before any boto3 client exists: the layer's clients honour AWS_ENDPOINT_URL.
        self._set_env(
            {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": self.aws.region,
                "AWS_DEFAULT_REGION": self.aws.region,
                "AWS_SESSION_TOKEN": None,
                "AWS_PROFILE": None,
            }
        )
        for key in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL_")]:
            self._set_env({key: None})  # a per-service endpoint would bypass moto

        t = self.template = Template(
            self.template_path,
            parameters=self.parameters,
            region=self.aws.region,
            stack_name=self.stack_name,
            sqs_endpoint=endpoint,
        )
        t.check_rules()
        self.stage = t.stage_name()
        builder = self._builder = ResourceBuilder(t, self.client)
        builder.create_all()
        self._event_buses = set(builder.buses or ["default"])
        self.aws.on_events = self._on_published

        specs = t.functions()
        self.routes = [r for s in specs for r in s.routes]
        #: the vendors the template serves: those with a /callbacks/{vendor}/{token} route
        self.template_vendors = list(
            dict.fromkeys(m.group(1) for r in self.routes if (m := _CALLBACK_PATH.fullmatch(r.path)))
        )
        self.mappings = [m for s in specs for m in s.sqs]
        self.schedules = [sch for s in specs for sch in s.schedules]
        for spec in specs:
            if spec.unsupported_events:
                log.warning(
                    "%s: events not emulated: %s", spec.logical_id, ", ".join(spec.unsupported_events)
                )

        self._tmpdir = Path(tempfile.mkdtemp(prefix="smsrelay-local-"))
        self.settings_path = self._tmpdir / "vendor-settings.json"
        self._apply_function_env(specs)

        # The API port must be known before the simulators: their pushes go to it.
        self._api = ApiServer(self, self.routes, self.functions)
        self.port = self._api.bind(self.host, self.port)
        self._api.start()
        self._start_vendors()
        self._reset_layer_caches()

        for spec in specs:
            # What the shared os.environ cannot hold for every function (CALLBACK_VENDOR) is the
            # function's own while its module is imported: that is when its app.py reads it.
            own_env = {
                k: v for k, v in spec.env.items() if k in self.env_conflicts and k not in self.env_overrides
            }
            function = LocalFunction(spec, self.aws.region, import_env=own_env)
            function.warm_up()  # a handler that cannot import fails the start, loudly
            self.functions[spec.logical_id] = function

        for mapping in self.mappings:
            if not mapping.enabled:
                continue
            queue = builder.queues.get(mapping.queue_arn)
            if queue is None:
                raise TemplateError(f"{mapping.function_id}.{mapping.event_id}: no queue {mapping.queue_arn}")
            function = self.functions[mapping.function_id]
            concurrency = min(mapping.max_concurrency or self.sqs_concurrency, function.max_environments)
            self._pollers.append(
                SqsPoller(
                    function=function,
                    sqs=self.client("sqs", fresh=True),
                    queue_url=queue.url,
                    queue_arn=queue.arn,
                    batch_size=mapping.batch_size,
                    report_failures=mapping.report_failures,
                    concurrency=concurrency,
                    region=self.aws.region,
                )
            )
        for target in builder.rule_targets:
            self._drains.append(
                QueueDrain(
                    self.client("sqs", fresh=True),
                    target.relay_queue_url,
                    lambda body, target=target: self._deliver_target(target, body),
                    f"{target.rule_id}-{target.target_id}",
                )
            )
        self._runners = [
            ScheduleRunner(s, self.functions[s.function_id], self.aws.region, self.schedule_scale)
            for s in self.schedules
        ]
        for worker in [*self._pollers, *self._drains, *self._runners]:
            worker.start()
        if self.publish_stack:
            self._publish_stack()
        self.ready = True
        if self.echo:
            self.echo(self.banner())

    def stop(self) -> None:
        """Stop everything this stack started; safe to call twice and after a failed start."""
        self.ready = False
        workers: list[Any] = [*self._runners, *self._pollers, *self._drains]
        if self._mirror is not None:
            workers.append(self._mirror)
        for worker in workers:
            worker.stop()
        deadline = time.monotonic() + self.STOP_WAIT_S  # one wait for all, not one per worker
        for worker in workers:
            worker.join(deadline - time.monotonic())
        self._runners, self._pollers, self._drains, self._mirror = [], [], [], None
        if self._api is not None:
            self._api.stop()
            self._api = None
        for sim in self.simulators.values():
            sim.stop()
        for function in self.functions.values():
            function.unload()
        self.aws.stop()
        self._clients.clear()
        self._restore_env()
        self._reset_layer_caches()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        with LocalStack._active_lock:
            if LocalStack._active is self:
                LocalStack._active = None

    # ------------------------------------------------------------------ environment
    def _set_env(self, values: dict[str, str | None]) -> None:
        for key, value in values.items():
            if key not in self._saved_env:
                self._saved_env[key] = os.environ.get(key)
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def _apply_function_env(self, specs: list[Any]) -> None:
        """One process, one os.environ: the union of every function's variables."""
        assert self.template is not None
        globals_env = (
            ((self.template.raw.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
        ).get("Variables") or {}
        union: dict[str, str] = {}
        conflicts: set[str] = set()
        for spec in specs:
            for key, value in spec.env.items():
                if key in union and union[key] != value:
                    conflicts.add(key)
                union.setdefault(key, value)
        for key in conflicts:  # the Globals value wins where functions differ (e.g. service name)
            if key in globals_env:
                union[key] = str(self.template.resolve(globals_env[key]))
        self.env_conflicts = sorted(conflicts)
        union |= LOCAL_ENV | {"VENDOR_SETTINGS_FILE": str(self.settings_path)} | self.env_overrides
        self.function_env = union
        self._set_env(dict(union))

    @staticmethod
    def _reset_layer_caches() -> None:
        """The layer caches boto3 clients per process: a new stack needs fresh ones (settings and
        adapters live in each function's dependencies, built when the stack loads it)."""
        try:
            from smsrelay import aws
        except ImportError:
            return
        aws.reset_clients()
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()

    def client(self, service: str, *, fresh: bool = False) -> Any:
        """A boto3 client on the emulator (not counted in aws_requests)."""
        if fresh:
            return self.aws.client(service)
        if service not in self._clients:
            self._clients[service] = self.aws.client(service)
        return self._clients[service]

    # ------------------------------------------------------------------ vendors
    def _start_vendors(self) -> None:
        given: dict[str, dict[str, Any]] = {}
        if self.settings_file is not None:
            given = json.loads(self.settings_file.read_text(encoding="utf-8"))
        for vendor, values in self.settings_overrides.items():
            given[vendor] = {**given.get(vendor, {}), **values}
        settings: dict[str, dict[str, Any]] = {k: dict(v) for k, v in given.items() if k not in VENDORS}
        callback_paths = {r.path for r in self.routes}
        for vendor in VENDORS:
            mine = dict(given.get(vendor) or {})
            token = str(mine.get("callback_token") or secrets.token_urlsafe(18))
            if f"/callbacks/{vendor}/{{token}}" not in callback_paths:
                log.warning("the template has no route /callbacks/%s/{token}", vendor)
            self.callback_urls[vendor] = f"{self.url}/callbacks/{vendor}/{token}"
            if "base_url" not in mine and vendor in self.simulated_vendors:
                sim = simulator_class(vendor)(push_url=self.callback_urls[vendor], **self.simulator_options)
                sim.start(self.host)
                self.simulators[vendor] = sim
                base = sim.settings() | {"callback_token": token}
                if vendor == "smsadmin":
                    base["pull_interval_s"] = 0  # the simulator has no rate limit worth waiting for
                mine = base | mine
            elif not mine:
                continue  # neither simulated nor configured: the vendor stays unconfigured
            mine["callback_token"] = token
            settings[vendor] = mine
        self.vendor_settings = settings
        assert self.settings_path is not None
        self.settings_path.write_text(json.dumps(settings, indent=2, ensure_ascii=False), encoding="utf-8")
        self.settings_path.chmod(0o600)
        self._fill_secrets(settings)

    def _fill_secrets(self, settings: dict[str, dict[str, Any]]) -> None:
        """Also put each vendor's settings in its secret, so the deployed code path works locally too."""
        sm = self.client("secretsmanager")
        for vendor, arn in self.vendor_secrets().items():
            if vendor in settings:
                try:
                    sm.put_secret_value(SecretId=arn, SecretString=json.dumps(settings[vendor]))
                except Exception as exc:  # a secret of your own (VendorSecretPrefix): not in moto
                    log.info("secret for %s not filled: %s", vendor, exc)

    def vendor_secrets(self) -> dict[str, str]:
        """Vendor id -> the name of its secret (VENDOR_SECRET_PREFIX + id), for the template's vendors."""
        prefix = self.function_env.get("VENDOR_SECRET_PREFIX")
        return {vendor: prefix + vendor for vendor in self.template_vendors} if prefix else {}

    # ------------------------------------------------------------------ the stack as CloudFormation shows it
    def outputs(self) -> dict[str, str]:
        """The template's Outputs with the local addresses: both APIs and the CloudFront
        distribution are this stack's API server (plain HTTP)."""
        assert self.template is not None
        region = self.aws.region
        local_hosts = (
            f"https://local.execute-api.{region}.amazonaws.com/{self.stage}",
            f"https://local.execute-api.{region}.amazonaws.com",
            "https://local.cloudfront.net",
            "http://local.cloudfront.net",
        )
        values = {}
        for name, value in self.template.outputs().items():
            for host in local_hosts:
                value = value.replace(host, self.url)
            values[name] = value
        return values

    def _publish_stack(self) -> None:
        outputs = self.outputs()
        if not outputs:  # not smsrelay's template: nothing a setup could use
            return
        body = {
            "Description": f"smsrelay local stack ({self.template_path}); resources live in the local emulator",
            "Resources": {"LocalStack": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {name: {"Value": value} for name, value in outputs.items()},
        }
        # moto creates nothing for the handle and says so; the stack is only there to be described.
        warnings.filterwarnings("ignore", message="Tried to parse AWS::CloudFormation::WaitConditionHandle")
        self.client("cloudformation").create_stack(StackName=self.stack_name, TemplateBody=json.dumps(body))
        self._mirror = SecretsMirror(
            self.client("secretsmanager", fresh=True),
            self.vendor_secrets(),
            self.vendor_settings,
            self._secrets_changed,
        )
        self._mirror.start()

    def _secrets_changed(self, changed: dict[str, dict[str, Any]]) -> None:
        """A vendor secret changed (smsrelay setup): the functions' settings file follows, and a
        simulated vendor pushes to the new callback URL (as a real one would once told)."""
        for vendor, values in changed.items():
            self.vendor_settings[vendor] = dict(values)
            token = values.get("callback_token")
            if token and vendor in VENDORS:
                self.callback_urls[vendor] = f"{self.url}/callbacks/{vendor}/{token}"
                if vendor in self.simulators:
                    self.simulators[vendor].push_url = self.callback_urls[vendor]
            if self.echo:
                self.echo(f"vendor {vendor}: settings changed in its secret; applied")
        assert self.settings_path is not None
        tmp = self.settings_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.vendor_settings, indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(self.settings_path)

    # ------------------------------------------------------------------ functions
    def function(self, name: str) -> LocalFunction:
        """By logical id (`PollFunction`), short name (`poll`, `callbacksms57`, also `callback_sms57`)
        or code directory (`send`)."""
        if name in self.functions:
            return self.functions[name]
        wanted = name.lower().replace("-", "_")
        for lid, function in self.functions.items():
            names = {lid.lower(), function.spec.short_name, function.spec.code_dir.name.lower()}
            if wanted in names or wanted.replace("_", "") in names:
                return function
        raise KeyError(f"no function {name!r}; known: {', '.join(self.functions)}")

    def invoke(self, function: str, event: Any) -> Any:
        """Invoke a function synchronously (as `lambda invoke` would); FunctionError when it raises."""
        return self.function(function).invoke(event)

    def run_schedule(self, function: str) -> Any:
        """Fire a scheduled function now, with its schedule's event."""
        fn = self.function(function)
        for runner in self._runners:
            if runner.function is fn:
                return runner.fire()
        for schedule in self.schedules:
            if schedule.function_id == fn.logical_id:
                return fn.invoke(scheduled_event(schedule, self.aws.region))
        raise KeyError(f"{fn.logical_id} has no schedule")

    def _deliver_target(self, target: RuleTarget, body: str) -> None:
        """What EventBridge does for one matched event and one target."""
        event = json.loads(body)
        payload = transform_input(
            event, input=target.input, input_path=target.input_path, transformer=target.input_transformer
        )
        service = target.arn.split(":")[2]
        assert self._builder is not None
        if service == "sqs":
            queue = self._builder.queues.get(target.arn)
            url = (
                queue.url
                if queue
                else self.client("sqs").get_queue_url(QueueName=target.arn.rsplit(":", 1)[-1])["QueueUrl"]
            )
            extra = {"MessageGroupId": target.message_group_id} if target.message_group_id else {}
            self.client("sqs").send_message(QueueUrl=url, MessageBody=payload, **extra)
        elif service == "lambda":
            fn = next((f for f in self.functions.values() if f.spec.arn == target.arn), None)
            if fn is None:
                log.warning("rule %s targets unknown function %s", target.rule_id, target.arn)
                return
            # An asynchronous invoke: a failure is logged by invoke, not retried locally.
            with contextlib.suppress(FunctionError):
                fn.invoke(json.loads(payload))
        elif service == "sns":
            self.client("sns").publish(TopicArn=target.arn, Message=payload)
        else:
            log.warning("rule %s: target %s not emulated", target.rule_id, target.arn)

    # ------------------------------------------------------------------ events
    def _on_published(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Every event put on the template's buses with source smsrelay, as EventBridge took it."""
        for bus, event in events:
            if bus in self._event_buses and event.get("source") == SOURCE:
                self._on_event(event)

    def _on_event(self, event: dict[str, Any]) -> None:
        self.event_log.add(event)
        if event.get("detail-type") == STATUS_CHANGED and self.echo:
            self.echo(status_line(event.get("detail") or {}))

    def subscribe(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Call `listener(event)` for every smsrelay event published from now on."""
        self.event_log.subscribe(listener)

    def events(self, detail_type: str | None = None) -> list[dict[str, Any]]:
        """The EventBridge events (source smsrelay) published so far, oldest first."""
        return self.event_log.events(detail_type)

    def wait_for_events(
        self,
        predicate: Callable[[dict[str, Any]], bool] | str | None = None,
        count: int = 1,
        timeout: float = 30.0,
    ) -> list[dict[str, Any]]:
        """Wait until `count` events match (a detail-type or a predicate); TimeoutError otherwise."""
        return self.event_log.wait_for(predicate, count, timeout)

    def clear_events(self) -> None:
        self.event_log.clear()

    # ------------------------------------------------------------------ inspection
    def physical(self, logical_id: str, attribute: str | None = None) -> str:
        """A resource's local name / URL / ARN, e.g. physical("DispatchQueue") is the queue URL."""
        assert self.template is not None
        return self.template.attribute(logical_id, attribute)

    def aws_requests(self) -> dict[str, int]:
        """AWS requests the functions made, by `service:Operation` (the stack's own plumbing excluded)."""
        return self.aws.request_counts()

    def reset_aws_requests(self) -> None:
        self.aws.reset_counts()

    def info(self) -> dict[str, Any]:
        batches = {p.queue_arn: p.batches for p in self._pollers}
        return {
            "url": self.url,
            "ready": self.ready,
            "stack_name": self.stack_name,
            "stack_published": self.publish_stack,
            "template": str(self.template_path),
            "stage": self.stage,
            "aws_endpoint": self.aws.endpoint,
            "routes": [
                {"method": r.method, "path": r.path, "function": r.function_id, "iam_auth": r.iam_auth}
                for r in self.routes
            ],
            "sqs_mappings": [
                {
                    "function": m.function_id,
                    "queue": m.queue_arn,
                    "batch_size": m.batch_size,
                    "report_failures": m.report_failures,
                    "batches": batches.get(m.queue_arn, 0),
                }
                for m in self.mappings
            ],
            "schedules": [
                {
                    "function": r.schedule.function_id,
                    "expression": r.schedule.expression,
                    "every_s": r.interval_s,
                    "runs": r.runs,
                }
                for r in self._runners
            ],
            "functions": {
                lid: {
                    "invocations": f.stats.invocations,
                    "errors": f.stats.errors,
                    "cold_starts": f.stats.cold_starts,
                    "timeouts": f.stats.timeouts,
                }
                for lid, f in self.functions.items()
            },
            "callback_urls": self.callback_urls,
            "simulators": {v: s.base_url for v, s in self.simulators.items()},
            "settings_file": str(self.settings_path),
            "not_emulated": self._builder.skipped if self._builder else [],
            "env_conflicts": self.env_conflicts,
        }

    def banner(self) -> str:
        lines = [f"smsrelay local stack: {self.url}   (template {self.template_path})"]
        lines.append("  routes (IAM auth is NOT enforced locally; unsigned requests are accepted):")
        for r in self.routes:
            lines.append(
                f"    {r.method:<5} {self.url}{r.path:<32} -> {r.function_id}"
                + ("  [IAM]" if r.iam_auth else "")
            )
        lines.append("  queues:")
        for p in self._pollers:
            mode = "partial batch failures" if p.report_failures else "whole batches"
            lines.append(
                f"    {p.queue_url.rsplit('/', 1)[-1]} -> {p.function.logical_id} (batch {p.batch_size}, {mode}, x{p.concurrency})"
            )
        lines.append("  schedules:")
        for r in self._runners:
            every = f"every {r.interval_s:g} s" if r.interval_s else "not fired (cron)"
            lines.append(f"    {r.function.logical_id}: {r.schedule.expression} -> {every}")
        lines.append("  vendor callback URLs:")
        for vendor, url in self.callback_urls.items():
            where = (
                f"simulator {self.simulators[vendor].base_url}"
                if vendor in self.simulators
                else (
                    f"outside server {self.vendor_settings[vendor].get('base_url')}"
                    if vendor in self.vendor_settings
                    else "not configured"
                )
            )
            lines.append(f"    {vendor:<9} {url}   ({where})")
        lines.append(f"  vendor settings: {self.settings_path}")
        lines.append(
            f"  helpers: GET {self.url}/health, GET {self.url}/_local/info, GET {self.url}/_local/events,"
            f" POST {self.url}/_local/run/{{function}}, POST {self.url}/_local/invoke/{{function}}"
        )
        lines.append(f"  AWS endpoint (moto): {self.aws.endpoint}   (aws --endpoint-url, boto3 endpoint_url)")
        if self.publish_stack:
            lines.append(
                f"  stack {self.stack_name}: smsrelay setup VENDOR --stack {self.stack_name}"
                f" --endpoint-url {self.aws.endpoint}"
            )
        return "\n".join(lines)

    # ------------------------------------------------------------------ HTTP helpers
    def health_response(self) -> Response:
        if not self.ready:
            return json_response({"status": "starting"}, 503)
        return json_response({"status": "ok", "functions": len(self.functions), "routes": len(self.routes)})

    def local_endpoint(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")  # _local, verb, [name]
        verb = parts[1] if len(parts) > 1 else ""
        name = parts[2] if len(parts) > 2 else ""
        if not self.ready:
            return json_response({"message": "local stack is starting"}, 503)
        try:
            if verb == "events" and request.method == "GET":
                events = self.events(request.args.get("detail_type"))
                return json_response(events[int(request.args.get("since", 0)) :])
            if verb == "info" and request.method == "GET":
                return json_response(self.info())
            if verb == "aws-requests" and request.method == "GET":
                return json_response(self.aws_requests())
            if verb == "aws-requests" and request.method == "DELETE":
                self.reset_aws_requests()
                return json_response({})
            if verb == "run" and name and request.method == "POST":
                return json_response(self.run_schedule(name))
            if verb == "invoke" and name and request.method == "POST":
                event = json.loads(request.get_data() or b"{}")
                return json_response(self.invoke(name, event))
        except KeyError as exc:
            return json_response({"message": str(exc.args[0]) if exc.args else str(exc)}, 404)
        except FunctionError as exc:
            cause = exc.__cause__
            return json_response({"errorType": type(cause).__name__, "errorMessage": str(cause)}, 500)
        except ValueError as exc:
            return json_response({"message": f"invalid JSON: {exc}"}, 400)
        return json_response({"message": f"no local helper {request.method} {request.path}"}, 404)
