"""The API Gateway front of the embedded cloud, from a hand-written REST API template shaped like CDK's.

A REST API with ``/v1/{usecase}/predict`` (POST, API key required, Lambda proxy), a usage plan at
5 requests/s with a burst of 5, and two key-free routes whose handlers raise or answer garbage. Each
test calls the front over HTTP, as a client of the real API would.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest

from local.cloud import EmbeddedCloud

STACK = "Sluice-api-test"

ECHO_HANDLER = """
import json
import time


def handler(event, context):
    print(json.dumps({
        "_aws": {"Timestamp": int(time.time() * 1000),
                 "CloudWatchMetrics": [{"Namespace": "SluiceTest", "Dimensions": [["usecase"]],
                                        "Metrics": [{"Name": "Calls", "Unit": "Count"}]}]},
        "usecase": (event.get("pathParameters") or {}).get("usecase", "-"),
        "Calls": 1,
    }))
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"X-Seen": ["a", "b"]},
        "body": json.dumps({"event": event}),
    }
"""

BROKEN_HANDLER = """
def handler(event, context):
    if event["path"].endswith("/raise"):
        raise RuntimeError("the handler broke")
    return {"statusCode": "not a number", "body": 42}
"""


def _function(asset: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Code": {"S3Bucket": "cdk-assets", "S3Key": f"{asset}.zip"},
            "Handler": "handler.handler",
            "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
            "Runtime": "python3.12",
            "Timeout": 10,
        },
        "DependsOn": ["FunctionRole"],
        "Metadata": {"aws:asset:path": asset, "aws:asset:property": "Code"},
    }


def _uri(function: str) -> dict[str, Any]:
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":apigateway:",
                {"Ref": "AWS::Region"},
                ":lambda:path/2015-03-31/functions/",
                {"Fn::GetAtt": [function, "Arn"]},
                "/invocations",
            ],
        ]
    }


def _resource(parent: dict[str, Any], part: str) -> dict[str, Any]:
    return {
        "Type": "AWS::ApiGateway::Resource",
        "Properties": {"ParentId": parent, "PathPart": part, "RestApiId": {"Ref": "Api"}},
    }


def _method(resource: str, function: str, *, key: bool, http_method: str = "POST") -> dict[str, Any]:
    return {
        "Type": "AWS::ApiGateway::Method",
        "Properties": {
            "HttpMethod": http_method,
            "ResourceId": {"Ref": resource},
            "RestApiId": {"Ref": "Api"},
            "AuthorizationType": "NONE",
            "ApiKeyRequired": key,
            "Integration": {"IntegrationHttpMethod": "POST", "Type": "AWS_PROXY", "Uri": _uri(function)},
        },
    }


TEMPLATE: dict[str, Any] = {
    "Resources": {
        "FunctionRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Action": "sts:AssumeRole",
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                        }
                    ],
                }
            },
        },
        "EchoFunction": _function("asset.echo"),
        "BrokenFunction": _function("asset.broken"),
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "scoring"}},
        "V1": _resource({"Fn::GetAtt": ["Api", "RootResourceId"]}, "v1"),
        "Usecase": _resource({"Ref": "V1"}, "{usecase}"),
        "Predict": _resource({"Ref": "Usecase"}, "predict"),
        "PredictPost": _method("Predict", "EchoFunction", key=True),
        "Broken": _resource({"Ref": "V1"}, "broken"),
        "BrokenProxy": _resource({"Ref": "Broken"}, "{proxy+}"),
        "BrokenAny": _method("BrokenProxy", "BrokenFunction", key=False, http_method="ANY"),
        "Deployment": {
            "Type": "AWS::ApiGateway::Deployment",
            "Properties": {"RestApiId": {"Ref": "Api"}, "Description": "scoring"},
            "DependsOn": ["PredictPost", "BrokenAny"],
        },
        "Stage": {
            "Type": "AWS::ApiGateway::Stage",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "DeploymentId": {"Ref": "Deployment"},
                "StageName": "prod",
                "Variables": {"flavour": "local"},
            },
        },
        "Key": {"Type": "AWS::ApiGateway::ApiKey", "Properties": {"Enabled": True}},
        "Plan": {
            "Type": "AWS::ApiGateway::UsagePlan",
            "Properties": {
                "ApiStages": [{"ApiId": {"Ref": "Api"}, "Stage": {"Ref": "Stage"}}],
                "Throttle": {"RateLimit": 5, "BurstLimit": 5},
                "Quota": {"Limit": 10_000, "Period": "DAY"},
            },
        },
        "PlanKey": {
            "Type": "AWS::ApiGateway::UsagePlanKey",
            "Properties": {"KeyId": {"Ref": "Key"}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": "Plan"}},
        },
    },
    "Outputs": {
        "ApiUrl": {
            "Value": {
                "Fn::Join": [
                    "",
                    [
                        "https://",
                        {"Ref": "Api"},
                        ".execute-api.",
                        {"Ref": "AWS::Region"},
                        ".",
                        {"Ref": "AWS::URLSuffix"},
                        "/",
                        {"Ref": "Stage"},
                        "/",
                    ],
                ]
            }
        },
        "ApiKeyId": {"Value": {"Ref": "Key"}},
    },
}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCloud]:
    assembly = tmp_path_factory.mktemp("cdk.out")
    for asset, source in (("asset.echo", ECHO_HANDLER), ("asset.broken", BROKEN_HANDLER)):
        (assembly / asset).mkdir()
        (assembly / asset / "handler.py").write_text(source)
    template_file = assembly / f"{STACK}.template.json"
    template_file.write_text(json.dumps(TEMPLATE))
    with EmbeddedCloud(template=template_file, state_dir=assembly / ".local") as running:
        yield running


@pytest.fixture(scope="module")
def key_value(cloud: EmbeddedCloud) -> str:
    response = cloud.client("apigateway").get_api_key(apiKey=cloud.outputs["ApiKeyId"], includeValue=True)
    return str(response["value"])


def call(
    url: str, *, body: Any = None, headers: dict[str, str] | None = None, method: str = "POST"
) -> tuple[int, Message, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read() or b"null")


def test_the_outputs_give_the_local_stage_url_and_keep_the_original(cloud: EmbeddedCloud) -> None:
    # Given the deployed template, whose ApiUrl output resolves to an execute-api URL
    outputs = json.loads(cloud.outputs_file.read_text())[STACK]
    deployment = json.loads(cloud.deployment_file.read_text())
    # Then outputs.json holds the URL a user calls, and deployment.json the original
    assert outputs["ApiUrl"] == f"http://127.0.0.1:{cloud.api_port}/prod/"
    assert deployment["originalOutputs"]["ApiUrl"].startswith("https://")
    assert deployment["originalOutputs"]["ApiUrl"].endswith(".execute-api.us-east-1.amazonaws.com/prod/")


def test_a_keyed_request_reaches_the_handler_with_the_proxy_event(cloud: EmbeddedCloud, key_value: str) -> None:
    # Given the key's value, as the API answers GetApiKey
    url = cloud.outputs["ApiUrl"] + "v1/churn/predict?x=1&x=2&y=3"
    # When a client posts with the key
    status, headers, body = call(url, body={"record": {"a": 1}}, headers={"x-api-key": key_value})
    # Then the handler saw a REST v1 proxy event and its response came back
    assert status == 200
    assert headers.get_all("X-Seen") == ["a", "b"]
    assert headers["x-amzn-RequestId"]
    event = body["event"]
    assert event["resource"] == "/v1/{usecase}/predict"
    assert event["path"] == "/v1/churn/predict"
    assert event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"usecase": "churn"}
    assert event["queryStringParameters"] == {"x": "2", "y": "3"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": ["3"]}
    assert event["stageVariables"] == {"flavour": "local"}
    assert json.loads(event["body"]) == {"record": {"a": 1}}
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "prod"
    assert context["resourcePath"] == "/v1/{usecase}/predict"
    assert context["path"] == "/prod/v1/churn/predict"
    assert context["identity"]["apiKey"] == key_value
    assert context["identity"]["apiKeyId"] == cloud.outputs["ApiKeyId"]
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["requestId"] == headers["x-amzn-RequestId"]


def test_a_request_without_a_valid_key_is_forbidden(cloud: EmbeddedCloud) -> None:
    url = cloud.outputs["ApiUrl"] + "v1/churn/predict"
    # When a client posts without a key, or with an unknown one
    missing = call(url, body={})
    unknown = call(url, body={}, headers={"x-api-key": "not-a-key"})
    # Then API Gateway's 403 answers, and the handler never ran
    assert missing[0] == unknown[0] == 403
    assert missing[2] == unknown[2] == {"message": "Forbidden"}


def test_an_unknown_route_answers_missing_authentication_token(cloud: EmbeddedCloud, key_value: str) -> None:
    # When a client calls a path, method or stage the API does not have
    for url, method in (
        (cloud.outputs["ApiUrl"] + "v2/nothing", "POST"),
        (cloud.outputs["ApiUrl"] + "v1/churn/predict", "GET"),
        (f"{cloud.api_url}/dev/v1/churn/predict", "POST"),
    ):
        status, _, body = call(url, body={}, headers={"x-api-key": key_value}, method=method)
        # Then it is API Gateway's 403
        assert (status, body) == (403, {"message": "Missing Authentication Token"})


def test_a_burst_past_the_usage_plan_is_throttled(cloud: EmbeddedCloud, key_value: str) -> None:
    # Given a usage plan of 5 requests/s with a burst of 5, its bucket full
    cloud.api_gateway.reset_limits()
    url = cloud.outputs["ApiUrl"] + "v1/churn/predict"
    # When a client sends 12 requests at once
    answers = [call(url, body={}, headers={"x-api-key": key_value}) for _ in range(12)]
    # Then the burst goes through and the rest are refused with API Gateway's 429
    statuses = [status for status, _, _ in answers]
    assert statuses.count(200) >= 5
    assert statuses.count(429) >= 4
    assert {"message": "Too Many Requests"} in [body for status, _, body in answers if status == 429]


def test_a_raising_or_malformed_handler_is_a_502(cloud: EmbeddedCloud) -> None:
    # When the proxy handler raises, or answers something that is not a proxy response
    raised = call(cloud.outputs["ApiUrl"] + "v1/broken/raise", method="GET")
    malformed = call(cloud.outputs["ApiUrl"] + "v1/broken/deep/garbage", body={"a": 1}, method="PUT")
    # Then API Gateway's 502 answers
    assert raised[0] == malformed[0] == 502
    assert raised[2] == malformed[2] == {"message": "Internal server error"}


def test_handler_emf_output_becomes_cloudwatch_metrics(cloud: EmbeddedCloud, key_value: str) -> None:
    # Given requests served by a handler that prints an EMF document per call
    cloud.api_gateway.reset_limits()
    call(cloud.outputs["ApiUrl"] + "v1/emf/predict", body={}, headers={"x-api-key": key_value})
    # Then CloudWatch knows the metric with the document's dimension
    metrics = cloud.client("cloudwatch").list_metrics(Namespace="SluiceTest", MetricName="Calls")["Metrics"]
    assert {"Name": "usecase", "Value": "emf"} in [d for m in metrics for d in m["Dimensions"]]
