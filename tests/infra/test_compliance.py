"""The template passes cdk-nag's AwsSolutions pack (every exception explained) and cfn-lint."""

from __future__ import annotations

import json
from typing import Any

from cfnlint.api import ManualArgs, lint_file

from infra.assembly import Assembly
from tests.infra.conftest import STACK_NAME


def _nag_report(assembly: Assembly) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((assembly.outdir / "validation-report.json").read_text())
    plugins: list[dict[str, Any]] = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    (plugin,) = plugins
    return plugin


def test_cdk_nag_finds_nothing_unacknowledged(assembly: Assembly) -> None:
    # Given the synthesized app, validated by cdk-nag's AwsSolutions plugin
    # When its validation report is read
    plugin = _nag_report(assembly)
    # Then the plugin concluded success with no open violation
    assert plugin["conclusion"] == "success"
    assert plugin["violations"] == []


def test_every_cdk_nag_acknowledgment_says_why(assembly: Assembly) -> None:
    # Given the findings cdk-nag reports as acknowledged
    acknowledged = _nag_report(assembly)["suppressedViolations"]
    # Then each carries a written reason and was made on a construct inside the stack, never on the app
    assert acknowledged
    for finding in acknowledged:
        assert len(finding["reason"].strip()) >= 20, finding["ruleName"]
        assert finding["acknowledgedAt"].startswith(f"{STACK_NAME}/"), finding["ruleName"]
        # And it covers the construct it names (or one of that construct's resources)
        assert all(
            construct["constructPath"].startswith(finding["acknowledgedAt"] + "/")
            for construct in finding["violatingConstructs"]
        ), finding["ruleName"]


def test_cfn_lint_reports_no_errors(assembly: Assembly) -> None:
    # Given the synthesized CloudFormation template
    template_file = assembly.stacks[STACK_NAME]
    # When cfn-lint checks it
    matches = lint_file(template_file, config=ManualArgs(regions=["us-east-1"]))
    # Then it reports no error (warnings about CDK's explicit DependsOn are acceptable)
    errors = [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E")]
    assert errors == []
