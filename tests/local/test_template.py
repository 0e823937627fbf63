"""The local CloudFormation template model: intrinsics, ordering, conditions, classification."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from local.exceptions import TemplateError, UnresolvableReferenceError
from local.services.lambdas import LambdaRuntime
from local.template.deployer import Deployer, Treatment, classify
from local.template.model import SSM_PARAMETER_PLACEHOLDER, DeployedState, Template
from local.template.naming import physical_name


def _template(resources: dict[str, Any] | None = None, **sections: Any) -> Template:
    body = {"Resources": resources or {"Topic": {"Type": "AWS::SNS::Topic"}}, **sections}
    return Template(body, stack_name="Sluice-unit")


def _resolve(value: Any, template: Template | None = None, state: DeployedState | None = None) -> Any:
    template = template or _template(Parameters={"Stage": {"Type": "String", "Default": "dev"}})
    return template.resolver(state or DeployedState()).resolve(value)


def test_pseudo_parameters_and_parameter_defaults_resolve() -> None:
    # Given a template with a defaulted parameter and CDK's SSM bootstrap parameter
    template = _template(
        Parameters={
            "Stage": {"Type": "String", "Default": "dev"},
            "BootstrapVersion": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/cdk-bootstrap/x/version"},
        }
    )

    # When Refs to them and to pseudo parameters are resolved
    resolved = _resolve(
        [{"Ref": name} for name in ("Stage", "BootstrapVersion", "AWS::Region", "AWS::AccountId", "AWS::Partition")]
        + [{"Ref": "AWS::StackName"}, {"Ref": "AWS::URLSuffix"}],
        template,
    )

    # Then they take the defaults, a dummy for SSM, and the emulated account's values
    assert resolved == [
        "dev",
        SSM_PARAMETER_PLACEHOLDER,
        "us-east-1",
        "123456789012",
        "aws",
        "Sluice-unit",
        "amazonaws.com",
    ]


def test_parameter_overrides_win_and_undeclared_ones_are_rejected() -> None:
    # Given a declared parameter
    body = {
        "Parameters": {"Stage": {"Type": "String", "Default": "dev"}},
        "Resources": {"T": {"Type": "AWS::SNS::Topic"}},
    }

    # When it is overridden / an undeclared one is given
    # Then the override wins / the template is refused
    assert Template(body, stack_name="s", parameter_overrides={"Stage": "prod"}).parameters["Stage"] == "prod"
    with pytest.raises(TemplateError):
        Template(body, stack_name="s", parameter_overrides={"Nope": "x"})


def test_join_select_split_base64_and_getazs() -> None:
    # Given nested intrinsics
    value = {
        "Fn::Join": [
            "-",
            [
                {"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]},
                {"Fn::Select": ["0", {"Fn::GetAZs": ""}]},
                {"Ref": "Stage"},
            ],
        ]
    }

    # When resolved
    # Then each function applies
    assert _resolve(value) == "b-us-east-1a-dev"
    assert _resolve({"Fn::Base64": "hi"}) == base64.b64encode(b"hi").decode()


def test_sub_in_both_forms_with_escapes_and_attributes() -> None:
    # Given a deployed bucket
    state = DeployedState()
    template = _template({"Bucket": {"Type": "AWS::S3::Bucket"}})
    state.record("Bucket", "my-bucket", {"Arn": "arn:aws:s3:::my-bucket"})

    # When Fn::Sub strings refer to it, to pseudo parameters, to variables and escape a ${}
    text = _resolve({"Fn::Sub": "${Bucket}|${Bucket.Arn}|${AWS::Region}|${!Literal}"}, template, state)
    with_variables = _resolve({"Fn::Sub": ["${Name}/${Bucket}", {"Name": {"Ref": "AWS::StackName"}}]}, template, state)

    # Then each placeholder is replaced as CloudFormation does
    assert text == "my-bucket|arn:aws:s3:::my-bucket|us-east-1|${Literal}"
    assert with_variables == "Sluice-unit/my-bucket"


def test_no_value_drops_the_key_or_item() -> None:
    # Given properties that use AWS::NoValue through Fn::If
    template = _template(
        Parameters={"Stage": {"Type": "String", "Default": "dev"}},
        Conditions={"IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}},
    )
    value = {
        "Keep": 1,
        "Drop": {"Fn::If": ["IsProd", "x", {"Ref": "AWS::NoValue"}]},
        "List": ["a", {"Ref": "AWS::NoValue"}],
    }

    # When resolved
    # Then the key and the list item disappear
    assert _resolve(value, template) == {"Keep": 1, "List": ["a"]}


def test_conditions_combine_and_decide_which_resources_exist() -> None:
    # Given conditions built from Equals / Not / And / Or / Condition
    template = _template(
        {
            "Always": {"Type": "AWS::SNS::Topic"},
            "ProdOnly": {"Type": "AWS::SNS::Topic", "Condition": "IsProd"},
            "DevOnly": {"Type": "AWS::SNS::Topic", "Condition": "IsDevInUs"},
        },
        Parameters={"Stage": {"Type": "String", "Default": "dev"}},
        Conditions={
            "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
            "IsUs": {"Fn::Or": [{"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}, {"Condition": "IsProd"}]},
            "IsDevInUs": {"Fn::And": [{"Fn::Not": [{"Condition": "IsProd"}]}, {"Condition": "IsUs"}]},
        },
    )

    # When the deployment order is computed
    order = [r.logical_id for r in template.deployment_order()]

    # Then only resources whose condition holds are in it
    assert order == ["Always", "DevOnly"]
    assert template.condition_holds("IsDevInUs") is True
    assert template.condition_holds("IsProd") is False


def test_deployment_order_follows_refs_getatts_subs_and_depends_on() -> None:
    # Given resources declared before what they depend on
    template = _template(
        {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {"DefinitionString": {"Fn::Sub": "${Fn.Arn}"}, "RoleArn": {"Fn::GetAtt": "Role.Arn"}},
            },
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Role": {"Fn::GetAtt": ["Role", "Arn"]}}},
            "Notifications": {"Type": "Custom::S3BucketNotifications", "DependsOn": "Permission"},
            "Permission": {"Type": "AWS::Lambda::Permission", "Properties": {"FunctionName": {"Ref": "Fn"}}},
            "Role": {"Type": "AWS::IAM::Role"},
        }
    )

    # When ordered
    order = [r.logical_id for r in template.deployment_order()]

    # Then each comes after its dependencies, ties in template order
    assert order == ["Role", "Fn", "Machine", "Permission", "Notifications"]


def test_cycles_and_unknown_references_are_template_errors() -> None:
    # Given a cycle / a reference to nothing
    cyclic = _template(
        {"A": {"Type": "AWS::SNS::Topic", "DependsOn": "B"}, "B": {"Type": "AWS::SNS::Topic", "DependsOn": "A"}}
    )

    # When loaded and ordered
    # Then both are refused with typed errors
    with pytest.raises(TemplateError, match="circular"):
        cyclic.deployment_order()
    with pytest.raises(UnresolvableReferenceError, match="Missing"):
        _template({"A": {"Type": "AWS::SNS::Topic", "Properties": {"X": {"Ref": "Missing"}}}})


def test_unsupported_intrinsics_and_unknown_attributes_say_so() -> None:
    # Given a deployed resource with known attributes and a placeholder one
    template = _template({"Bucket": {"Type": "AWS::S3::Bucket"}, "Api": {"Type": "AWS::ApiGatewayV2::Api"}})
    state = DeployedState()
    state.record("Bucket", "b", {"Arn": "arn:aws:s3:::b"})
    state.record_placeholder("Api", "api-id")

    # When resolving what the model cannot know
    # Then the error is typed; placeholders answer any attribute
    with pytest.raises(TemplateError, match="ImportValue"):
        _resolve({"Fn::ImportValue": "x"}, template, state)
    with pytest.raises(UnresolvableReferenceError, match=r"Bucket\.Nope"):
        _resolve({"Fn::GetAtt": ["Bucket", "Nope"]}, template, state)
    assert _resolve({"Fn::GetAtt": ["Api", "ApiEndpoint"]}, template, state) == "local-not-emulated:Api.ApiEndpoint"


def test_unknown_types_are_reported_not_emulated_and_cdk_helpers_skipped(tmp_path: Path) -> None:
    # Given a template with emulated, CDK-helper and unknown types
    template = _template(
        {
            "Bucket": {"Type": "AWS::S3::Bucket"},
            "Notifications": {"Type": "Custom::S3BucketNotifications"},
            "BucketNotificationsHandler050a0587b7544547bf325f094a3db834": {"Type": "AWS::Lambda::Function"},
            "CDKMetadata": {"Type": "AWS::CDK::Metadata"},
            "Api": {"Type": "AWS::ApiGatewayV2::Api"},
            "Endpoint": {"Type": "AWS::SageMaker::Endpoint"},
            "RestApi": {"Type": "AWS::ApiGateway::RestApi"},
            "Service": {"Type": "AWS::AppRunner::Service"},
        }
    )
    runtime = LambdaRuntime(endpoint_url="http://127.0.0.1:1", region="us-east-1", project_root=tmp_path)
    deployer = Deployer(template, client=lambda service: None, lambdas=runtime, asset_root=tmp_path, state_dir=tmp_path)

    # When the deployment is planned (no API calls)
    plan = {resource.logical_id: treatment for resource, treatment in deployer.plan()}

    # Then each is classified; unknown types are reported rather than failing
    assert plan == {
        "Bucket": Treatment.EMULATED,
        "Notifications": Treatment.EMULATED,
        "BucketNotificationsHandler050a0587b7544547bf325f094a3db834": Treatment.SKIPPED,
        "CDKMetadata": Treatment.SKIPPED,
        "Api": Treatment.NOT_EMULATED,
        "Endpoint": Treatment.EMULATED,
        "RestApi": Treatment.EMULATED,
        "Service": Treatment.NOT_EMULATED,
    }
    assert classify(template.resources["Api"]) is Treatment.NOT_EMULATED


def test_physical_names_follow_cloudformation_and_fit_limits() -> None:
    # Given a long stack name and logical id
    stack, logical = "Sluice-telco-churn-with-a-very-long-stage-name", "RawDataBucketWithAVeryLongLogicalIdF00D1234"

    # When a bucket name and a function name are made
    bucket = physical_name(stack, logical, max_length=63, lowercase=True)
    function = physical_name(stack, logical, max_length=64)

    # Then they are stable, within limits, and shaped <stack>-<logical>-<suffix>
    assert bucket == physical_name(stack, logical, max_length=63, lowercase=True)
    assert len(bucket) <= 63
    assert bucket == bucket.lower()
    assert bucket.startswith("sluice-telco")
    assert len(function) <= 64
    assert function.count("-") >= 2
