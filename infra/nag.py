"""cdk-nag helpers: acknowledging a finding with its reason, and naming resources as findings do."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    """Accept one cdk-nag finding on ``construct`` (and its children), with the reason it is acceptable."""
    Validations.of(construct).acknowledge(Acknowledgment(id=f"AwsSolutions::{finding}", reason=reason))


def logical_id(construct: IConstruct) -> str:
    """The logical id of ``construct``'s CloudFormation resource, as cdk-nag names it in finding ids."""
    resource = construct.node.default_child
    if not isinstance(resource, CfnElement):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource")
    stack = Stack.of(construct)
    return str(stack.resolve(stack.get_logical_id(resource)))
