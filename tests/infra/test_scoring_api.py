"""The scoring API as synthesized: REST API and usage plan, the score function's environment and
permissions, the prediction log, and the score bundle's size.

The telco churn (light) template comes from the session fixture; a synthetic heavy use case with no
model registered yet (so no endpoint resource) is synthesized once into its own output directory.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.assembly import Assembly, synthesize
from infra.settings import ROOT, ScoringApiSettings
from shared.usecase.settings import load_usecase
from tests.infra.conftest import get_att, object_arn, ref
from tests.infra.staged_assets import function_bundle, python312, unzipped_size, x86_64_twin
from tests.infra.test_training_pipeline import role_statements

TELCO = ROOT / "usecases" / "telco_churn.toml"
HEAVY_STACK = "Sluice-heavy-scoring"
HEAVY_MODEL = """
[model]
kind = "heavy"
estimator = "gradient_boosting"
endpoint_instance_type = "ml.g4dn.xlarge"
"""
HEAVY_SERVING = """
[serving]
throttle_rate_per_second = 7.5
throttle_burst = 15
daily_quota = 10000
"""
SCORE_BUNDLE_BUDGET_BYTES = 120 * 1024 * 1024
"""The score function's code and layers, unzipped: about half of Lambda's 250 MB."""
FORBIDDEN_PACKAGES = ("sklearn", "scipy", "pandas", "pyarrow")
X_RAY_ACTIONS = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
IDEMPOTENCY_ACTIONS = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]


# --- helpers -----------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _function_role(template_json: dict[str, Any], function_id: str) -> str:
    role: str = template_json["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return role


def _permissions(template_json: dict[str, Any], function_id: str) -> dict[str, tuple[list[str], list[Any]]]:
    """Sid (or the first action, for statements CDK adds) → (sorted actions, resources)."""
    statements = role_statements(template_json, _function_role(template_json, function_id))
    by_name: dict[str, tuple[list[str], list[Any]]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = sorted(_as_list(statement["Action"]))
        by_name[statement.get("Sid", actions[0])] = (actions, _as_list(statement["Resource"]))
    return by_name


def _under_review(resources: dict[str, Any], resource_id: str) -> bool:
    props = resources[resource_id]["Properties"]
    parent = props["ParentId"]
    return props["PathPart"] == "review" or (
        isinstance(parent, dict) and "Ref" in parent and _under_review(resources, parent["Ref"])
    )


def _methods(template_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``POST predict`` etc. → the method's properties (its resource's path part names it)."""
    resources = template_json["Resources"]
    methods = {}
    for resource in resources.values():
        if resource["Type"] != "AWS::ApiGateway::Method":
            continue
        properties = resource["Properties"]
        if _under_review(resources, properties["ResourceId"]["Ref"]):
            continue  # the reviewer's routes (tests/infra/test_review.py)
        path_part = resources[properties["ResourceId"]["Ref"]]["Properties"]["PathPart"]
        methods[f"{properties['HttpMethod']} {path_part}"] = properties
    return methods


def _model_package_arn(group: str) -> dict[str, Any]:
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                ref("AWS::Partition"),
                ":sagemaker:",
                ref("AWS::Region"),
                ":",
                ref("AWS::AccountId"),
                f":model-package/{group}/*",
            ],
        ]
    }


@pytest.fixture(scope="module")
def score_function_id(output_refs: dict[str, str]) -> str:
    return output_refs["ScoreFunctionName"]


@pytest.fixture(scope="module")
def heavy_assembly(tmp_path_factory: pytest.TempPathFactory) -> Assembly:
    directory = tmp_path_factory.mktemp("heavy-scoring")
    text = TELCO.read_text().replace('name = "telco_churn"', 'name = "heavy_scoring"')
    text = text[: text.index("[model]")] + HEAVY_MODEL + HEAVY_SERVING
    usecase_file = directory / "heavy_scoring.toml"
    usecase_file.write_text(text)
    # No initial_model_data: the endpoint resource does not exist yet, its name does.
    return synthesize(usecase=usecase_file, outdir=directory / "cdk.out")


@pytest.fixture(scope="module")
def heavy_json(heavy_assembly: Assembly) -> dict[str, Any]:
    return heavy_assembly.template(HEAVY_STACK)


# --- the REST API ------------------------------------------------------------------------------


def test_predict_and_feedback_require_an_api_key_and_proxy_to_the_score_function(
    template_json: dict[str, Any], score_function_id: str
) -> None:
    # Given the API's methods
    methods = _methods(template_json)
    assert set(methods) == {"POST predict", "POST infer", "POST feedback", "GET openapi.json"}
    for name, method in methods.items():
        # Then every method is a Lambda proxy integration of the score function
        integration = method["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert integration["IntegrationHttpMethod"] == "POST"
        assert get_att(score_function_id) in integration["Uri"]["Fn::Join"][1], name
        # And predict and feedback need an API key and a validated JSON body; openapi.json is public
        assert method["ApiKeyRequired"] is (name != "GET openapi.json"), name
        assert "RequestValidatorId" in method, name
    assert set(methods["POST predict"]["RequestModels"]) == {"application/json"}
    assert set(methods["POST feedback"]["RequestModels"]) == {"application/json"}
    assert set(methods["POST infer"]["RequestModels"]) == {"application/json"}


def test_the_routes_live_under_v1_and_the_usecase(template_json: dict[str, Any]) -> None:
    resources = template_json["Resources"]
    paths = set()
    for resource in resources.values():
        if resource["Type"] != "AWS::ApiGateway::Resource":
            continue
        parts, properties = [], resource["Properties"]
        while True:
            parts.insert(0, properties["PathPart"])
            parent = properties["ParentId"]
            if "Ref" not in parent:
                break
            properties = resources[parent["Ref"]]["Properties"]
        paths.add("/" + "/".join(parts))
    assert {"/v1/{usecase}/predict", "/v1/{usecase}/feedback", "/v1/{usecase}/openapi.json"} <= paths
    # And bulk callers find the Open Inference Protocol's path
    assert "/v2/models/{usecase}/infer" in paths


def test_the_request_validator_checks_bodies_and_parameters(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ApiGateway::RequestValidator", {"ValidateRequestBody": True, "ValidateRequestParameters": True}
    )


def test_the_usage_plan_throttles_at_the_usecase_serving_settings(template: Template) -> None:
    # Given the telco churn use case's serving settings
    serving = load_usecase(TELCO).serving
    # Then its usage plan, holding the API key, throttles callers at that rate and burst (no quota set)
    template.resource_count_is("AWS::ApiGateway::UsagePlan", 1)
    template.has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {
            "Throttle": {"RateLimit": serving.throttle_rate_per_second, "BurstLimit": serving.throttle_burst},
            "Quota": Match.absent(),
            "ApiStages": [Match.object_like({"Stage": Match.any_value()})],
        },
    )
    template.has_resource_properties("AWS::ApiGateway::ApiKey", {"Enabled": True})
    template.has_resource_properties("AWS::ApiGateway::UsagePlanKey", {"KeyType": "API_KEY"})


def test_a_daily_quota_and_throttle_come_from_the_usecase(heavy_json: dict[str, Any]) -> None:
    Template.from_json(heavy_json).has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {"Throttle": {"RateLimit": 7.5, "BurstLimit": 15}, "Quota": {"Limit": 10000, "Period": "DAY"}},
    )


def test_the_stage_logs_traces_and_throttles(template: Template) -> None:
    serving = load_usecase(TELCO).serving
    settings = ScoringApiSettings.from_usecase(load_usecase(TELCO), usecase_file=TELCO)
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": settings.stage_name,
            "TracingEnabled": True,
            "AccessLogSetting": {"DestinationArn": Match.any_value(), "Format": Match.string_like_regexp("requestId")},
            "MethodSettings": Match.array_with(
                [
                    Match.object_like(
                        {
                            "HttpMethod": "*",
                            "ResourcePath": "/*",
                            "LoggingLevel": "ERROR",
                            "DataTraceEnabled": False,
                            "ThrottlingRateLimit": serving.throttle_rate_per_second,
                            "ThrottlingBurstLimit": serving.throttle_burst,
                        }
                    ),
                    Match.object_like(
                        {
                            "HttpMethod": "GET",
                            "ResourcePath": "/~1v1~1{usecase}~1openapi.json",
                            "ThrottlingRateLimit": settings.openapi_throttle_rate_per_second,
                            "ThrottlingBurstLimit": settings.openapi_throttle_burst,
                        }
                    ),
                ]
            ),
        },
    )
    # And API Gateway may write logs through the account's CloudWatch role
    template.resource_count_is("AWS::ApiGateway::Account", 1)


def test_outputs_name_the_scoring_resources(template_json: dict[str, Any], output_refs: dict[str, str]) -> None:
    outputs = template_json["Outputs"]
    for key in ("ApiKeyId", "ScoreFunctionName", "DeploymentTableName", "PredictionLogQueueUrl", "ReviewQueueUrl"):
        assert key in output_refs, key
    resources = template_json["Resources"]
    assert resources[output_refs["ApiKeyId"]]["Type"] == "AWS::ApiGateway::ApiKey"
    assert resources[output_refs["DeploymentTableName"]]["Type"] == "AWS::DynamoDB::Table"
    url = outputs["ApiUrl"]["Value"]["Fn::Join"][1]
    assert url[0] == "https://"
    assert url[-1] == "/"
    assert resources[url[-2]["Ref"]]["Type"] == "AWS::ApiGateway::Stage"


# --- state -------------------------------------------------------------------------------------


def test_the_deployment_table_is_keyed_by_usecase_and_sort_key(
    template_json: dict[str, Any], output_refs: dict[str, str]
) -> None:
    table = template_json["Resources"][output_refs["DeploymentTableName"]]["Properties"]
    assert table["KeySchema"] == [
        {"AttributeName": "usecase", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert "StreamSpecification" not in table


# --- the score function ------------------------------------------------------------------------


def test_the_score_function_environment_is_the_interface(
    template_json: dict[str, Any], score_function_id: str, output_refs: dict[str, str]
) -> None:
    function = template_json["Resources"][score_function_id]["Properties"]
    env = function["Environment"]["Variables"]
    assert set(env) == {
        "SLUICE_USECASE_FILE",
        "DEPLOYMENT_TABLE",
        "LAKE_BUCKET",
        "PREDICTION_LOG_QUEUE_URL",
        "REVIEW_QUEUE_URL",
        "IDEMPOTENCY_TABLE",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "LOG_LEVEL",
    }
    assert env["SLUICE_USECASE_FILE"] == "usecase.toml"
    assert env["DEPLOYMENT_TABLE"] == ref(output_refs["DeploymentTableName"])
    assert env["LAKE_BUCKET"] == ref(output_refs["LakeBucketName"])
    assert env["PREDICTION_LOG_QUEUE_URL"] == ref(output_refs["PredictionLogQueueUrl"])
    assert env["REVIEW_QUEUE_URL"] == ref(output_refs["ReviewQueueUrl"])
    assert env["IDEMPOTENCY_TABLE"]["Ref"] != output_refs["IdempotencyTableName"]  # its own, not ingest's
    assert env["POWERTOOLS_SERVICE_NAME"] == "score"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Sluice"
    # And it runs on arm64 / Python 3.12 with 1 GB, 10 s and active tracing
    assert function["Architectures"] == ["arm64"]
    assert function["Runtime"] == "python3.12"
    assert function["MemorySize"] == 1024
    assert function["Timeout"] == 10
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert "LoggingConfig" in function


def test_the_score_function_has_exactly_its_permissions(
    template_json: dict[str, Any], score_function_id: str, output_refs: dict[str, str]
) -> None:
    # Given the score function's role
    permissions = _permissions(template_json, score_function_id)
    lake = output_refs["LakeBucketName"]
    env = template_json["Resources"][score_function_id]["Properties"]["Environment"]["Variables"]
    (log_group_id,) = [
        logical_id
        for logical_id, resource in template_json["Resources"].items()
        if resource["Type"] == "AWS::Logs::LogGroup" and logical_id.startswith("ScoringApiScoreFunctionLogGroup")
    ]
    # Then it holds these statements and no other: no endpoint for a light use case, no wildcard action
    assert permissions == {
        "ReadModels": (["s3:GetObject"], [object_arn(lake, "models/telco_churn/*")]),
        "WriteFeedback": (["s3:PutObject"], [object_arn(lake, "feedback/telco_churn/*")]),
        # the monitor's latest report: segments under an alert route predictions to review
        "ReadLatestMonitoringReport": (["s3:GetObject"], [object_arn(lake, "monitoring/telco_churn/reports/*")]),
        "ListMonitoringReports": (["s3:ListBucket"], [get_att(lake)]),
        "DescribeModelPackages": (["sagemaker:DescribeModelPackage"], [_model_package_arn("sluice-telco-churn")]),
        "ReadDeploymentState": (
            ["dynamodb:GetItem", "dynamodb:Query"],
            [get_att(output_refs["DeploymentTableName"])],
        ),
        "RecordIdempotency": (IDEMPOTENCY_ACTIONS, [get_att(env["IDEMPOTENCY_TABLE"]["Ref"])]),
        "SendPredictionsAndReviews": (
            ["sqs:SendMessage"],
            [get_att(output_refs["PredictionLogQueueUrl"]), get_att(output_refs["ReviewQueueUrl"])],
        ),
        "logs:CreateLogStream": (["logs:CreateLogStream", "logs:PutLogEvents"], [get_att(log_group_id)]),
        "xray:PutTelemetryRecords": (X_RAY_ACTIONS, ["*"]),
    }
    for actions, _ in permissions.values():
        assert all("*" not in action for action in actions)


def test_a_heavy_usecase_may_invoke_its_endpoint_before_it_exists(heavy_json: dict[str, Any]) -> None:
    # Given a heavy use case with no registered model (so no endpoint resource)
    resources = heavy_json["Resources"]
    assert not [r for r in resources.values() if r["Type"] == "AWS::SageMaker::Endpoint"]
    function_id = heavy_json["Outputs"]["ScoreFunctionName"]["Value"]["Ref"]
    # Then the score function knows the endpoint's name by convention
    env = resources[function_id]["Properties"]["Environment"]["Variables"]
    assert env["SAGEMAKER_ENDPOINT_NAME"] == "sluice-heavy-scoring"
    # And may invoke that endpoint only
    actions, endpoint = _permissions(heavy_json, function_id)["InvokeHeavyModelEndpoint"]
    assert actions == ["sagemaker:InvokeEndpoint"]
    assert endpoint == [
        {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    ref("AWS::Partition"),
                    ":sagemaker:",
                    ref("AWS::Region"),
                    ":",
                    ref("AWS::AccountId"),
                    ":endpoint/sluice-heavy-scoring",
                ],
            ]
        }
    ]


def test_a_light_usecase_has_no_endpoint_name(template_json: dict[str, Any], score_function_id: str) -> None:
    env = template_json["Resources"][score_function_id]["Properties"]["Environment"]["Variables"]
    assert "SAGEMAKER_ENDPOINT_NAME" not in env


# --- the prediction log and the review queue ---------------------------------------------------


def test_the_prediction_log_drains_in_batches_with_partial_failures(
    template: Template, output_refs: dict[str, str]
) -> None:
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": get_att(output_refs["PredictionLogQueueUrl"]),
            "BatchSize": 100,
            "MaximumBatchingWindowInSeconds": 30,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )


def test_the_prediction_log_queue_is_encrypted_with_a_dead_letter_queue_and_alarm(
    template_json: dict[str, Any], output_refs: dict[str, str]
) -> None:
    resources = template_json["Resources"]
    queue = resources[output_refs["PredictionLogQueueUrl"]]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    dead_letters = queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    # Lambda's rule for SQS event sources: visibility at least six function timeouts plus the window
    (mapping,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
        and r["Properties"]["EventSourceArn"] == get_att(output_refs["PredictionLogQueueUrl"])
    ]
    timeout = resources[mapping["FunctionName"]["Ref"]]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout + 30
    # And a message in the dead-letter queue raises an alarm on the alarm topic
    alarms = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and {"Name": "QueueName", "Value": get_att(dead_letters, "QueueName")} in r["Properties"].get("Dimensions", [])
    ]
    (alarm,) = alarms
    assert alarm["AlarmActions"] == [ref(output_refs["AlarmTopicArn"])]
    assert alarm["Threshold"] == 1
    # And queue policies deny anything but TLS
    for queue_id in (output_refs["PredictionLogQueueUrl"], output_refs["ReviewQueueUrl"], dead_letters):
        (policy,) = [
            r["Properties"]
            for r in resources.values()
            if r["Type"] == "AWS::SQS::QueuePolicy" and ref(queue_id) in r["Properties"]["Queues"]
        ]
        assert any(
            s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy["PolicyDocument"]["Statement"]
        )


def test_the_prediction_log_function_writes_predictions_only(
    template_json: dict[str, Any], output_refs: dict[str, str]
) -> None:
    resources = template_json["Resources"]
    (mapping,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
        and r["Properties"]["EventSourceArn"] == get_att(output_refs["PredictionLogQueueUrl"])
    ]
    function_id = mapping["FunctionName"]["Ref"]
    permissions = _permissions(template_json, function_id)
    assert permissions["WritePredictionLog"] == (
        ["s3:PutObject"],
        [object_arn(output_refs["LakeBucketName"], "predictions/telco_churn/*")],
    )
    s3_actions = [a for actions, _ in permissions.values() for a in actions if a.startswith("s3:")]
    assert s3_actions == ["s3:PutObject"]
    assert resources[function_id]["Properties"]["Architectures"] == ["arm64"]


def test_the_review_queue_keeps_cases_for_14_days(template_json: dict[str, Any], output_refs: dict[str, str]) -> None:
    queue = template_json["Resources"][output_refs["ReviewQueueUrl"]]["Properties"]
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["SqsManagedSseEnabled"] is True


# --- the score bundle --------------------------------------------------------------------------


def test_the_score_bundle_fits_its_budget_without_training_libraries(
    template_json: dict[str, Any], score_function_id: str, asset_dirs: dict[str, Path]
) -> None:
    # Given the score function's code and layers as staged
    staged = function_bundle(template_json, template_json["Resources"][score_function_id], asset_dirs)
    # When their unzipped sizes are added up
    total = sum(unzipped_size(directory) for directory in staged)
    # Then the bundle stays within 120 MiB
    assert total <= SCORE_BUNDLE_BUDGET_BYTES, f"{total / 2**20:.1f} MiB"
    # And it holds onnxruntime's Python binding for arm64, but no training library and no C API copy
    site = [d / "python" for d in staged if (d / "python").is_dir()]
    assert any(
        list(s.glob("onnxruntime/capi/onnxruntime_pybind11_state.cpython-312-aarch64-linux-gnu.so")) for s in site
    )
    assert not any(list(s.glob("onnxruntime/capi/libonnxruntime.so*")) for s in site)
    for directory in staged:
        for name in FORBIDDEN_PACKAGES:
            assert not list(directory.rglob(name)), f"{name} in {directory.name}"


def test_the_pruned_scoring_layer_still_imports_and_scores(tmp_path: Path) -> None:
    # Given the scoring layer built and pruned exactly as for Lambda, but for this machine's x86_64
    python = python312()
    if python is None:
        pytest.skip("no CPython 3.12 here to import a cp312 layer with")
    settings = ScoringApiSettings.from_usecase(load_usecase(TELCO), usecase_file=TELCO)
    site = x86_64_twin(settings.requirements_file)
    # And a two-class ONNX model with one [N, 1] input, as the score function loads
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["tenure", "weights"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "tiny",
        [helper.make_tensor_value_info("tenure", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor("weights", TensorProto.FLOAT, [1, 2], [0.5, -0.5])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "model.onnx"))
    script = f"""
import importlib.util, sys
sys.path.insert(0, {str(site)!r})
import numpy, onnxruntime, pydantic, boto3, aws_xray_sdk
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
session = onnxruntime.InferenceSession({str(tmp_path / "model.onnx")!r}, providers=["CPUExecutionProvider"])
(probabilities,) = session.run(["probabilities"], {{"tenure": numpy.array([[1.0], [2.0]], dtype=numpy.float32)}})
assert probabilities.shape == (2, 2), probabilities
assert onnxruntime.__file__.startswith({str(site)!r})
assert not [m for m in {FORBIDDEN_PACKAGES!r} if importlib.util.find_spec(m)]
print("ok")
"""
    # When CPython 3.12 imports the layer in isolation and scores with it
    result = subprocess.run([python, "-I", "-c", script], capture_output=True, text=True, check=False, timeout=120)
    # Then it scores
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
