"""The local stack: smsrelay's template.yaml run on loopback (moto, in-process functions, simulators)."""

from .lambdas import FunctionError, LambdaContext
from .local_stack import LocalStack, default_template, mask_number, status_line
from .template import ApiRoute, Schedule, SqsMapping, Template, TemplateError

__all__ = [
    "ApiRoute",
    "FunctionError",
    "LambdaContext",
    "LocalStack",
    "Schedule",
    "SqsMapping",
    "Template",
    "TemplateError",
    "default_template",
    "mask_number",
    "status_line",
]
