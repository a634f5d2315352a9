# AWS SAM tooling: included from the top Makefile (`include mk/sam.mk`).
#
#   make sam-venv    aws-sam-cli in its own venv (.venv-sam): it pins older boto3/pydantic than the project
#   make validate    cfn-lint (project venv) + `sam validate --lint`, offline
#   make sam-build   `sam build` into a temporary directory, offline and without Docker, then checks the
#                    artifacts: layer has python/smsrelay and an aarch64 cp312 pydantic_core, no boto3/botocore,
#                    every function has app.py
#   make checkov     checkov on template.yaml (own venv under .venv-sam/, already git-ignored)
#   make sam-check   all three
#
# No AWS account is needed: the region below only satisfies the SAM translator.

SAM_VENV ?= .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_STAMP := $(SAM_VENV)/.installed
CHECKOV_VENV ?= $(SAM_VENV)/checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
SAM_PYTHON ?= python3
CFN_LINT ?= .venv/bin/cfn-lint
SAM_ENV := AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} SAM_CLI_TELEMETRY=0 \
	SAM_CLI_DISABLE_UPDATE_CHECK=1 AWS_EC2_METADATA_DISABLED=true

# Functions of template.yaml (logical id = build target in functions/<dir>/Makefile).
SAM_FUNCTIONS := SendFunction DispatchFunction PollFunction SweepFunction StatusApiFunction \
	CallbackSms57Function CallbackKxt3Function CallbackSmsadminFunction CallbackIntlFunction \
	CallbackSantoFunction

# checkov: resource-specific suppressions live in template.yaml (Metadata.checkov.skip, each with a
# comment). These four apply to every function and are deliberate design choices:
#  CKV_AWS_117  Lambda in a VPC: the functions call public vendor HTTP APIs and AWS APIs only; a VPC
#               would add NAT cost and cold-start latency and protect nothing.
#  CKV_AWS_116  Lambda DLQ: SQS-triggered functions get their DLQ from the queue redrive policy (a
#               function DLQ does nothing for them); API-triggered ones are synchronous (errors go back
#               to the caller, vendors retry on 5xx). Async entry points (send, poll, sweep) have one.
#  CKV_AWS_115  reserved concurrency: reserving it can fail deploys in accounts with low limits;
#               dispatch is capped by SQS ScalingConfig.MaximumConcurrency (parameter) instead.
#  CKV_AWS_173  env var KMS CMK: the environment holds names and ARNs only, never secrets (those are
#               in Secrets Manager); the default Lambda encryption at rest applies.
CHECKOV_SKIP := CKV_AWS_117,CKV_AWS_116,CKV_AWS_115,CKV_AWS_173

.PHONY: sam-venv checkov-venv validate sam-build checkov sam-check

sam-venv: $(SAM_STAMP)

$(SAM_STAMP):
	$(SAM_PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli
	touch $@

checkov-venv: $(CHECKOV_STAMP)

$(CHECKOV_STAMP): $(SAM_STAMP)
	$(SAM_PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check checkov
	touch $@

validate: $(SAM_STAMP)
	$(CFN_LINT) template.yaml
	$(SAM_ENV) $(SAM) validate --lint --template-file template.yaml

sam-build: $(SAM_STAMP)
	@set -e; out=$$(mktemp -d); trap 'rm -rf "$$out"' EXIT; \
	echo "sam build -> $$out"; \
	$(SAM_ENV) PYTHON=$(abspath $(SAM_VENV))/bin/python $(SAM) build --template-file template.yaml \
		--build-dir "$$out/build" --cache-dir "$$out/cache"; \
	layer="$$out/build/SharedLayer/python"; \
	test -f "$$layer/smsrelay/__init__.py" || { echo "layer lacks python/smsrelay"; exit 1; }; \
	ls "$$layer"/pydantic_core/_pydantic_core.cpython-312-aarch64-linux-gnu.so >/dev/null \
		|| { echo "layer lacks the aarch64 cp312 pydantic_core"; exit 1; }; \
	for pkg in aws_lambda_powertools pydantic requests phonenumbers aws_xray_sdk; do \
		test -d "$$layer/$$pkg" || { echo "layer lacks $$pkg"; exit 1; }; done; \
	for pkg in boto3 botocore; do \
		test ! -e "$$layer/$$pkg" || { echo "layer must not ship $$pkg (the runtime has it)"; exit 1; }; done; \
	for fn in $(SAM_FUNCTIONS); do \
		test -f "$$out/build/$$fn/app.py" || { echo "$$fn: no app.py in the build"; exit 1; }; done; \
	echo "sam-build OK: layer $$(du -sh "$$out/build/SharedLayer" | cut -f1)," \
		"pydantic_core $$(ls "$$layer" | grep -m1 '^pydantic_core-'), $(words $(SAM_FUNCTIONS)) functions"

checkov: $(CHECKOV_STAMP)
	BC_SKIP_MAPPING=TRUE $(CHECKOV) --quiet --compact --skip-download --framework cloudformation \
		--file template.yaml --skip-check $(CHECKOV_SKIP)

sam-check: validate sam-build checkov
