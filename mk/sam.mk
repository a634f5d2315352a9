# AWS SAM tooling: included from the top Makefile (`include mk/sam.mk`).
#
#   make sam-venv    aws-sam-cli in its own venv (.venv-sam): it pins older boto3/pydantic than the project
#   make validate    cfn-lint (project venv) + `sam validate --lint`, offline, on template.yaml and on
#                    its optional modes switched on (mk/template_variant.py: static egress in a new VPC
#                    or existing subnets, CloudFront, WAF, bus policy)
#   make sam-build   `sam build` into a temporary directory, offline and without Docker, then checks the
#                    artifacts: layer has python/smsrelay and an aarch64 cp312 pydantic_core, no boto3/botocore,
#                    every function has app.py
#   make checkov     checkov on template.yaml and the same variants (own venv under .venv-sam/, already
#                    git-ignored): checkov renders a template with its parameter defaults
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
# SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS: sam expands template.yaml's Fn::ForEach loops itself (off by
# default in the SAM CLI; CloudFormation expands them again at deploy time).
SAM_ENV := AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} SAM_CLI_TELEMETRY=0 \
	SAM_CLI_DISABLE_UPDATE_CHECK=1 AWS_EC2_METADATA_DISABLED=true SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS=1

# Functions of template.yaml (logical id = build target in functions/<dir>/Makefile), read from
# the template itself (its one list; per-vendor functions included), by the local stack's reader.
SAM_FUNCTIONS = $(shell .venv/bin/python -c 'from smsrelay_local.stack import Template, default_template; print(" ".join(s.logical_id for s in Template(default_template()).functions()))')

# checkov: resource-specific suppressions live in template.yaml (Metadata.checkov.skip, each with a
# comment; CKV_AWS_117 "Lambda in a VPC" per function: dispatch and poll join the egress VPC when
# StaticEgress is on, the others never call a vendor). These three apply to every function and are
# deliberate design choices:
#  CKV_AWS_116  Lambda DLQ: SQS-triggered functions get their DLQ from the queue redrive policy (a
#               function DLQ does nothing for them); API-triggered ones are synchronous (errors go back
#               to the caller, vendors retry on 5xx). Async entry points (send, poll, sweep) have one.
#  CKV_AWS_115  reserved concurrency: reserving it can fail deploys in accounts with low limits;
#               dispatch is capped by SQS ScalingConfig.MaximumConcurrency (parameter) instead.
#  CKV_AWS_173  env var KMS CMK: the environment holds names and ARNs only, never secrets (those are
#               in Secrets Manager); the default Lambda encryption at rest applies.
CHECKOV_SKIP := CKV_AWS_116,CKV_AWS_115,CKV_AWS_173

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

# Optional modes of template.yaml, switched on by other parameter defaults (see mk/template_variant.py).
TEMPLATE_VARIANTS := new-vpc-cloudfront existing-subnets
VARIANT_DIR := $(SAM_VENV)/variants

.PHONY: template-variants
template-variants:
	@mkdir -p $(VARIANT_DIR)
	@for v in $(TEMPLATE_VARIANTS); do $(SAM_PYTHON) mk/template_variant.py template.yaml $(VARIANT_DIR)/$$v.yaml $$v; done

validate: $(SAM_STAMP) template-variants
	@set -e; for t in template.yaml $(TEMPLATE_VARIANTS:%=$(VARIANT_DIR)/%.yaml); do \
		echo "cfn-lint + sam validate --lint: $$t"; \
		$(CFN_LINT) $$t; \
		$(SAM_ENV) $(SAM) validate --lint --template-file $$t; done

sam-build: $(SAM_STAMP) install
	@set -e; test -n "$(SAM_FUNCTIONS)" || { echo "no functions read from template.yaml"; exit 1; }; out=$$(mktemp -d); trap 'rm -rf "$$out"' EXIT; \
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

# checkov skips Fn::ForEach loops: it scans each template with its loops expanded (mk/expand_template.py).
checkov: $(CHECKOV_STAMP) template-variants install
	@set -e; for t in template.yaml $(TEMPLATE_VARIANTS:%=$(VARIANT_DIR)/%.yaml); do \
		echo "checkov: $$t"; \
		expanded=$(VARIANT_DIR)/$$(basename $$t .yaml).expanded.json; \
		.venv/bin/python mk/expand_template.py $$t $$expanded; \
		BC_SKIP_MAPPING=TRUE $(CHECKOV) --quiet --compact --skip-download --framework cloudformation \
			--file $$expanded --skip-check $(CHECKOV_SKIP); done

sam-check: validate sam-build checkov
