"""Errors raised by the embedded cloud."""

from __future__ import annotations


class LocalCloudError(RuntimeError):
    """Base class of every error the embedded cloud raises."""


class TemplateError(LocalCloudError):
    """The CloudFormation template is malformed or uses something this model cannot read."""


class UnresolvableReferenceError(TemplateError):
    """A Ref, Fn::GetAtt or Fn::Sub names something that neither the template nor the deployment knows."""


class StackDeploymentError(LocalCloudError):
    """Creating a resource in the embedded cloud failed."""


class LambdaCodeError(LocalCloudError):
    """A function's handler cannot be found or loaded from its asset directory."""


class IdleTimeoutError(LocalCloudError):
    """The asynchronous invocation queue did not drain in time."""
