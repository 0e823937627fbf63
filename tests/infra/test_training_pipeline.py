"""The training pipeline (and a heavy model's endpoint) as synthesized: roles, wiring, the state machine.

The telco churn template comes from the session fixture; a synthetic heavy use case, written here,
is synthesized once into its own output directory to check what depends on the use-case file.
"""

from __future__ import annotations

import json
import re
import tarfile
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template
from cfnlint.api import ManualArgs, lint_file
from constructs import Construct
from sagemaker.core import image_uris

from infra.assembly import Assembly, synthesize
from infra.settings import ROOT
from infra.training_pipeline import (
    SKLEARN_FRAMEWORK,
    SKLEARN_VERSION,
    XGBOOST_FRAMEWORK,
    XGBOOST_VERSION,
    FrameworkImageError,
    framework_image,
    framework_image_registries,
)
from local.template.model import DeployedState, Resolver
from local.template.model import Template as DeployableTemplate
from shared.usecase.estimators import RESERVED_HYPERPARAMETERS
from shared.usecase.settings import load_usecase
from tests.infra.conftest import get_att, ref

TELCO = ROOT / "usecases" / "telco_churn.toml"
HEAVY_STACK = "Sluice-heavy-churn"
HEAVY_MODEL = """
[model]
kind = "heavy"
estimator = "xgboost"
hyperparameters = { n_estimators = 200, max_depth = 6 }
training_instance_type = "ml.g5.2xlarge"
endpoint_instance_type = "ml.g4dn.xlarge"
max_runtime_seconds = 7200
use_spot = true
poll_seconds = 5
schedule = "cron(0 3 ? * MON *)"
debounce_seconds = 120
"""
INITIAL_MODEL_DATA = "s3://models-bucket/heavy/model.tar.gz"
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
US_EAST_1_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
US_EAST_1_XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.2-0"
OLD_TABLE_REGIONS = {
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1", "eu-west-1", "eu-west-2",
    "eu-west-3", "eu-central-1", "eu-north-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-southeast-1",
    "ap-southeast-2",
}  # fmt: skip
"""The regions of the hand-copied table the SDK's lookup replaced: every one of them must still deploy."""


# --- helpers -----------------------------------------------------------------------------------


def _placeholder(token: dict[str, Any]) -> str:
    if "Ref" in token:
        return "${" + token["Ref"] + "}"
    if isinstance(token.get("Fn::Sub"), str):
        return str(token["Fn::Sub"])
    if "Fn::GetAtt" in token:
        return "${" + ".".join(token["Fn::GetAtt"]) + "}"
    return "${" + next(iter(token)) + "}"


def training_state_machine_id(template_json: dict[str, Any]) -> str:
    """The training state machine (the stack has others, e.g. the promotion's), found through its output."""
    machine_id: str = template_json["Outputs"]["TrainingStateMachineArn"]["Value"]["Ref"]
    return machine_id


def training_state_machine_role(template_json: dict[str, Any]) -> str:
    machine = template_json["Resources"][training_state_machine_id(template_json)]
    role_id: str = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    return role_id


def resolved_in_region(template_json: dict[str, Any], region: str, *values: Any) -> list[Any]:
    """``values`` of the template as CloudFormation resolves them in ``region`` (resources by placeholder)."""
    template = DeployableTemplate(template_json, stack_name=HEAVY_STACK, region=region)
    state = DeployedState()
    for logical_id in template.resources:
        state.record_placeholder(logical_id, logical_id)
    resolver = Resolver(template, state)
    return [resolver.resolve(value) for value in values]


def sdk_image(region: str, scope: str, framework: str = SKLEARN_FRAMEWORK, version: str = SKLEARN_VERSION) -> str:
    """What the SageMaker Python SDK gives for the framework's image (scikit-learn's by default) in ``region``."""
    uri: str = image_uris.retrieve(framework, region, version, image_scope=scope)
    return uri


def state_machine_definition(template_json: dict[str, Any]) -> dict[str, Any]:
    """The training state machine's definition, its ``Fn::Join`` tokens turned into ``${...}`` placeholders."""
    machine = template_json["Resources"][training_state_machine_id(template_json)]
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    definition: dict[str, Any] = json.loads("".join(p if isinstance(p, str) else _placeholder(p) for p in parts))
    return definition


def role_statements(template_json: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for resource in template_json["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and ref(role_id) in resource["Properties"]["Roles"]:
            statements.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return statements


def roles_assumed_by(template_json: dict[str, Any], service: str) -> list[str]:
    return [
        logical_id
        for logical_id, resource in template_json["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
        and resource["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": service}
    ]


def _by_sid(statements: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in statements}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def create_training_job(definition: dict[str, Any]) -> dict[str, Any]:
    parameters: dict[str, Any] = definition["States"]["CreateTrainingJob"]["Parameters"]
    return parameters


@pytest.fixture(scope="module")
def heavy_assembly(tmp_path_factory: pytest.TempPathFactory) -> Assembly:
    directory = tmp_path_factory.mktemp("heavy")
    text = TELCO.read_text()
    text = text.replace('name = "telco_churn"', 'name = "heavy_churn"')
    text = text[: text.index("[model]")] + HEAVY_MODEL
    usecase_file = directory / "heavy_churn.toml"
    usecase_file.write_text(text)
    return synthesize(
        usecase=usecase_file, outdir=directory / "cdk.out", context={"initial_model_data": INITIAL_MODEL_DATA}
    )


@pytest.fixture(scope="module")
def heavy_without_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Assembly:
    """The heavy use case before any model exists: no ``initial_model_data``, so no endpoint in the stack."""
    directory = tmp_path_factory.mktemp("heavy-no-endpoint")
    text = TELCO.read_text()
    text = text.replace('name = "telco_churn"', 'name = "heavy_churn"')
    usecase_file = directory / "heavy_churn.toml"
    usecase_file.write_text(text[: text.index("[model]")] + HEAVY_MODEL)
    return synthesize(usecase=usecase_file, outdir=directory / "cdk.out")


@pytest.fixture(scope="module")
def heavy_json(heavy_assembly: Assembly) -> dict[str, Any]:
    return heavy_assembly.template(HEAVY_STACK)


@pytest.fixture(scope="module")
def heavy(heavy_json: dict[str, Any]) -> Template:
    return Template.from_json(heavy_json)


@pytest.fixture(scope="module")
def definition(template_json: dict[str, Any]) -> dict[str, Any]:
    return state_machine_definition(template_json)


# --- registry ----------------------------------------------------------------------------------


def test_each_usecase_has_a_model_package_group_named_in_the_outputs(
    template: Template, template_json: dict[str, Any]
) -> None:
    template.resource_count_is("AWS::SageMaker::ModelPackageGroup", 1)
    template.has_resource_properties(
        "AWS::SageMaker::ModelPackageGroup", {"ModelPackageGroupName": "sluice-telco-churn"}
    )
    assert template_json["Outputs"]["ModelPackageGroupName"]["Value"] == "sluice-telco-churn"


# --- the training role -------------------------------------------------------------------------


def _source_archive_key(assembly: Assembly) -> str:
    """The S3 key of the training source archive (``sourcedir.tar.gz``) in CDK's asset bucket."""
    manifest = json.loads((assembly.outdir / "Sluice-telco-churn.assets.json").read_text())
    (key,) = [
        destination["objectKey"]
        for entry in manifest["files"].values()
        if entry["source"]["path"].endswith(".tar.gz")
        for destination in entry["destinations"].values()
    ]
    return str(key)


def test_the_training_role_is_trusted_by_sagemaker_only_and_least_privilege(
    template_json: dict[str, Any], output_refs: dict[str, str], assembly: Assembly
) -> None:
    # Given the one role SageMaker assumes
    (role_id,) = roles_assumed_by(template_json, "sagemaker.amazonaws.com")
    trust = template_json["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}}
    ]
    # When its permissions are read
    statements = _by_sid(role_statements(template_json, role_id))
    lake = output_refs["LakeBucketName"]
    # Then it reads the use case's training sets, writes its own SageMaker prefix, and nothing else in the lake
    assert statements["ReadTrainingSets"]["Action"] == "s3:GetObject"
    assert statements["ReadTrainingSets"]["Resource"] == {
        "Fn::Join": ["", [get_att(lake), "/training-sets/telco_churn/*"]]
    }
    assert sorted(statements["WriteJobOutputAndCheckpoints"]["Action"]) == ["s3:GetObject", "s3:PutObject"]
    assert statements["WriteJobOutputAndCheckpoints"]["Resource"] == {
        "Fn::Join": ["", [get_att(lake), "/sagemaker/telco_churn/*"]]
    }
    assert statements["ListOwnPrefixes"]["Condition"] == {
        "StringLike": {"s3:prefix": ["training-sets/telco_churn/*", "sagemaker/telco_churn/*"]}
    }
    # And it reads exactly the code archive's object
    code = statements["ReadTrainingCode"]
    assert code["Action"] == "s3:GetObject"
    assert code["Resource"]["Fn::Join"][1][-1] == f"/{_source_archive_key(assembly)}"
    # And it logs to SageMaker's training-job log group only
    logs = statements["WriteTrainingLogs"]
    assert all(TRAINING_LOG_GROUP in json.dumps(resource) for resource in _as_list(logs["Resource"]))
    # And metrics go to named namespaces only, images come from the scikit-learn repository only
    assert statements["PublishTrainingMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": ["/aws/sagemaker/TrainingJobs", "Sluice"]}
    }
    assert "repository/sagemaker-scikit-learn" in json.dumps(statements["PullTrainingImage"]["Resource"])
    # And no statement grants a wildcard action or a NotAction
    assert set(statements) == {
        "ReadTrainingSets",
        "ListOwnPrefixes",
        "WriteJobOutputAndCheckpoints",
        "ReadTrainingCode",
        "WriteTrainingLogs",
        "PullTrainingImage",
        "AuthenticateToEcr",
        "PublishTrainingMetrics",
    }
    for statement in statements.values():
        assert statement["Effect"] == "Allow"
        assert all("*" not in action for action in _as_list(statement["Action"]))
    assert statements["AuthenticateToEcr"]["Action"] == "ecr:GetAuthorizationToken"


def test_the_state_machine_may_pass_the_training_role_to_sagemaker_only(template_json: dict[str, Any]) -> None:
    (training_role,) = roles_assumed_by(template_json, "sagemaker.amazonaws.com")
    machine_role = training_state_machine_role(template_json)
    (pass_role,) = [s for s in role_statements(template_json, machine_role) if s["Action"] == "iam:PassRole"]
    assert pass_role["Resource"] == get_att(training_role)
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


# --- the training job comes from the use case --------------------------------------------------


def test_the_training_job_is_sized_by_the_usecase(definition: dict[str, Any]) -> None:
    # Given the telco churn use case's model settings
    model = load_usecase(TELCO).model
    # When the state machine creates the training job
    job = create_training_job(definition)
    # Then instance, runtime and hyperparameters are the use case's
    assert job["ResourceConfig"] == {
        "InstanceType": model.training_instance_type,
        "InstanceCount": model.training_instance_count,
        "VolumeSizeInGB": model.training_volume_size_gb,
    }
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": model.max_runtime_seconds}
    assert "EnableManagedSpotTraining" not in job
    for name, value in model.hyperparameters.items():
        assert json.loads(job["HyperParameters"][name]) == value
    # And it runs in script mode from the code archive, named after the execution
    hyper = job["HyperParameters"]
    assert json.loads(hyper["sagemaker_program"]) == "training/train.py"
    assert re.fullmatch(
        r'"s3://cdk-\w+-assets-\$\{AWS::AccountId\}-\$\{AWS::Region\}/\w+\.gz"', hyper["sagemaker_submit_directory"]
    )
    assert hyper["cutoff.$"] == "States.JsonToString($.training_set.cutoff)"
    assert hyper["training_job_name.$"] == "States.JsonToString($$.Execution.Name)"
    assert json.loads(hyper["code_version"])
    # And every hyperparameter but SageMaker's own is one the training script reads (no stray names)
    user_names = {name.removesuffix(".$") for name in hyper if not name.startswith("sagemaker_")}
    assert user_names == set(model.hyperparameters) | RESERVED_HYPERPARAMETERS
    assert job["TrainingJobName.$"] == "$$.Execution.Name"
    assert job["AlgorithmSpecification"]["TrainingImage"].endswith("/sagemaker-scikit-learn:1.2-1-cpu-py3")
    (channel,) = job["InputDataConfig"]
    assert channel["DataSource"]["S3DataSource"]["S3Uri.$"] == "$.training_set.s3_uri"


def test_the_training_image_account_is_looked_up_by_region(template_json: dict[str, Any]) -> None:
    (mapping,) = template_json["Mappings"].values()
    assert mapping["us-east-1"] == {"account": "683313688378"}
    assert {"us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1"} <= set(mapping)
    # And the region-agnostic template lists every region the SageMaker Python SDK has the image in
    registries = framework_image_registries(SKLEARN_FRAMEWORK, SKLEARN_VERSION)
    assert mapping == {region: {"account": account} for region, account in registries.items()}
    assert set(mapping) > OLD_TABLE_REGIONS


def test_heavy_xgboost_training_and_its_endpoint_use_the_sdks_xgboost_image_in_every_region_it_lists(
    heavy_json: dict[str, Any],
) -> None:
    # Given the heavy (XGBoost) template's training job and endpoint model, as CloudFormation resolves them per region
    machine = heavy_json["Resources"][training_state_machine_id(heavy_json)]
    (model,) = [r for r in heavy_json["Resources"].values() if r["Type"] == "AWS::SageMaker::Model"]
    # (the embedded cloud's template model knows the URL suffixes of the aws and aws-cn partitions)
    registries = framework_image_registries(XGBOOST_FRAMEWORK, XGBOOST_VERSION)
    regions = [r for r in registries if not r.startswith("us-iso")]
    assert {"il-central-1", "ap-southeast-4", "cn-north-1"} <= set(regions) - OLD_TABLE_REGIONS
    for region in regions:
        # When the template is deployed in that region
        definition, model_image = resolved_in_region(
            heavy_json,
            region,
            machine["Properties"]["DefinitionString"],
            model["Properties"]["PrimaryContainer"]["Image"],
        )
        training_image = create_training_job(json.loads(definition))["AlgorithmSpecification"]["TrainingImage"]
        # Then both run the SDK's XGBoost image of that region (in script mode: the same entry point)
        assert training_image == sdk_image(region, "training", XGBOOST_FRAMEWORK, XGBOOST_VERSION), region
        assert model_image == sdk_image(region, "inference", XGBOOST_FRAMEWORK, XGBOOST_VERSION), region
        if region == "us-east-1":
            assert training_image == model_image == US_EAST_1_XGBOOST_IMAGE
    # And its account comes from the template's XGBoost mapping, listing every region the SDK has the image in
    (mapping_id,) = heavy_json["Mappings"]
    assert "XgboostImageAccounts" in mapping_id
    assert heavy_json["Mappings"][mapping_id] == {
        region: {"account": account} for region, account in registries.items()
    }
    # And the training role may pull from the XGBoost repository only
    (pull,) = [
        statement
        for resource in heavy_json["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "PullTrainingImage"
    ]
    pulled = json.dumps(pull["Resource"])
    assert "repository/sagemaker-xgboost" in pulled
    assert "scikit-learn" not in pulled


def _images_in(*regions: str) -> tuple[list[str], dict[str, Any]]:
    """The images stacks in ``regions`` get, resolved, and the mappings of their templates."""
    app = cdk.App()
    stacks = [
        cdk.Stack(app, f"Images{index}", env=cdk.Environment(region=region)) for index, region in enumerate(regions)
    ]
    images = [
        framework_image(Construct(stack, "Pipeline"), "Accounts", framework=SKLEARN_FRAMEWORK, version=SKLEARN_VERSION)
        for stack in stacks
    ]
    assembly = app.synth()
    mappings = {
        stack.stack_name: assembly.get_stack_by_name(stack.stack_name).template.get("Mappings") for stack in stacks
    }
    return [stack.resolve(image.uri) for stack, image in zip(stacks, images, strict=True)], mappings


def test_a_stack_in_a_known_region_gets_the_sdks_image_uri_itself() -> None:
    # Given stacks synthesized for a region of the old table and for one outside it
    # When their image is looked up
    (in_us_east_1, in_israel), mappings = _images_in("us-east-1", "il-central-1")
    # Then each is the SDK's URI as a literal, and no mapping is needed
    assert in_us_east_1 == US_EAST_1_IMAGE
    assert in_israel == "898809789911.dkr.ecr.il-central-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    assert in_israel == sdk_image("il-central-1", "training")
    assert mappings == {"Images0": None, "Images1": None}


def test_a_region_the_sdk_does_not_list_fails_the_synth_with_its_name() -> None:
    with pytest.raises(FrameworkImageError, match=re.escape("no sklearn 1.2-1 image in xx-nowhere-1")):
        _images_in("xx-nowhere-1")


def test_a_heavy_usecase_trains_on_its_gpu_instance_with_spot_and_checkpoints(heavy_json: dict[str, Any]) -> None:
    # Given a synthetic heavy (XGBoost) use case with its own GPU instance type, spot and a short poll
    job = create_training_job(state_machine_definition(heavy_json))
    definition = state_machine_definition(heavy_json)
    # Then the job uses its instance type, spot capacity with a wait limit, and checkpoints in S3
    assert job["ResourceConfig"]["InstanceType"] == "ml.g5.2xlarge"
    # And it runs the training entry point in script mode, with the use case's XGBoost hyperparameters
    hyperparameters = job["HyperParameters"]
    assert hyperparameters["sagemaker_program"] == '"training/train.py"'
    assert (hyperparameters["n_estimators"], hyperparameters["max_depth"]) == ("200", "6")
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200, "MaxWaitTimeInSeconds": 14400}
    assert re.fullmatch(
        r"States\.Format\('s3://\$\{\w+\}/sagemaker/heavy_churn/checkpoints/\{\}/', \$\$\.Execution\.Name\)",
        job["CheckpointConfig"]["S3Uri.$"],
    )
    assert definition["States"]["WaitForTrainingJob"]["Seconds"] == 5


# --- the state machine -------------------------------------------------------------------------


def test_the_state_machine_polls_the_training_job(definition: dict[str, Any]) -> None:
    states = definition["States"]
    assert definition["StartAt"] == "BuildTrainingSet"
    assert states["BuildTrainingSet"]["Next"] == "CreateTrainingJob"
    assert states["CreateTrainingJob"]["Resource"].endswith(":states:::aws-sdk:sagemaker:createTrainingJob")
    assert states["CreateTrainingJob"]["Next"] == "WaitForTrainingJob"
    poll = load_usecase(TELCO).model.poll_seconds  # the use case sets how often the job is polled
    assert states["WaitForTrainingJob"] == {"Type": "Wait", "Seconds": poll, "Next": "DescribeTrainingJob"}
    assert states["DescribeTrainingJob"]["Resource"].endswith(":states:::aws-sdk:sagemaker:describeTrainingJob")
    assert states["DescribeTrainingJob"]["Next"] == "TrainingJobStatus"
    assert not any(state.get("Resource", "").endswith(".sync") for state in states.values())


def test_the_job_status_choice_routes_every_outcome(definition: dict[str, Any]) -> None:
    choice = definition["States"]["TrainingJobStatus"]
    routes = {
        rule["StringEquals"]: rule["Next"]
        for rule in choice["Choices"]
        if rule.get("Variable") == "$.job.TrainingJobStatus"
    }
    (in_progress,) = [rule for rule in choice["Choices"] if "Or" in rule]
    assert routes == {"Completed": "RegisterModel", "Failed": "TrainingJobFailed", "Stopped": "TrainingJobStopped"}
    assert {c["StringEquals"] for c in in_progress["Or"]} == {"InProgress", "Stopping"}
    assert in_progress["Next"] == choice["Default"] == "WaitForTrainingJob"
    assert definition["States"]["RegisterModel"]["Next"] == "Registered"
    assert definition["States"]["Registered"] == {"Type": "Succeed"}


def test_a_failed_job_ends_in_a_notification_and_a_fail_with_its_reason(
    definition: dict[str, Any], output_refs: dict[str, str]
) -> None:
    states = definition["States"]
    # Given the path of a Failed job
    failed = states["TrainingJobFailed"]
    # Then it records the job's failure reason, notifies the alarm topic, and fails the execution with it
    assert failed["Type"] == "Pass"
    assert failed["ResultPath"] == "$.failure"
    assert failed["Parameters"]["Error"] == "TrainingJobFailed"
    assert "$.job.FailureReason" in failed["Parameters"]["Cause.$"]
    assert failed["Next"] == states["TrainingJobStopped"]["Next"] == "NotifyFailure"
    notify = states["NotifyFailure"]
    assert notify["Resource"].endswith(":states:::sns:publish")
    assert notify["Parameters"]["TopicArn"] == "${" + output_refs["AlarmTopicArn"] + "}"
    assert notify["Parameters"]["Message"]["cause.$"] == "$.failure.Cause"
    assert notify["Next"] == "TrainingFailed"
    assert states["TrainingFailed"] == {"Type": "Fail", "ErrorPath": "$.failure.Error", "CausePath": "$.failure.Cause"}


def test_the_state_machine_may_publish_to_the_encrypted_alarm_topic(template_json: dict[str, Any]) -> None:
    machine_role = training_state_machine_role(template_json)
    statements = role_statements(template_json, machine_role)
    (kms,) = [s for s in statements if "kms:GenerateDataKey" in _as_list(s["Action"])]
    assert sorted(_as_list(kms["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    (key_id,) = [k for k, r in template_json["Resources"].items() if r["Type"] == "AWS::KMS::Key"]
    assert kms["Resource"] == get_att(key_id)


def test_every_task_catches_into_the_failure_path_and_retries_lambda_service_errors_only(
    definition: dict[str, Any],
) -> None:
    states = definition["States"]
    for name in ("BuildTrainingSet", "CreateTrainingJob", "DescribeTrainingJob", "RegisterModel"):
        assert states[name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "NotifyFailure"}
        ], name
    for name in ("BuildTrainingSet", "RegisterModel"):
        (retry,) = states[name]["Retry"]
        assert all(error.startswith("Lambda.") for error in retry["ErrorEquals"]), name
        assert states[name]["Resource"].endswith(":states:::lambda:invoke")
    for name in ("CreateTrainingJob", "DescribeTrainingJob"):
        assert "Retry" not in states[name], name


# --- triggers ----------------------------------------------------------------------------------


def test_the_schedule_rule_starts_the_state_machine(template: Template, output_refs: dict[str, str]) -> None:
    model = load_usecase(TELCO).model
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": model.schedule,
            "State": "ENABLED",
            "Targets": [Match.object_like({"Arn": ref(output_refs["TrainingStateMachineArn"])})],
        },
    )


def test_heavy_schedule_comes_from_its_usecase(heavy: Template) -> None:
    heavy.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "cron(0 3 ? * MON *)"})


def test_new_manifests_reach_the_trigger_queue(template: Template, output_refs: dict[str, str]) -> None:
    template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "BucketName": ref(output_refs["LakeBucketName"]),
            "NotificationConfiguration": {
                "QueueConfigurations": [
                    {
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "manifests/telco_churn/"}]}},
                        "QueueArn": get_att(output_refs["TrainingQueueUrl"]),
                    }
                ]
            },
        },
    )


@pytest.mark.parametrize(("variant", "debounce"), [("telco", 300), ("heavy", 120)])
def test_the_trigger_gathers_new_data_for_the_debounce_window(
    variant: str, debounce: int, template: Template, heavy: Template
) -> None:
    chosen = template if variant == "telco" else heavy
    chosen.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "BatchSize": 100,
            "MaximumBatchingWindowInSeconds": debounce,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )
    chosen.has_resource_properties(
        "AWS::Lambda::Function",
        {"Environment": {"Variables": Match.object_like({"DEBOUNCE_SECONDS": str(debounce)})}},
    )


def test_the_trigger_queue_is_encrypted_with_a_dead_letter_queue(
    template_json: dict[str, Any], output_refs: dict[str, str]
) -> None:
    queue = template_json["Resources"][output_refs["TrainingQueueUrl"]]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    # Lambda's rule: visibility >= 6 x the trigger's 30 s timeout, plus the batching window
    assert queue["VisibilityTimeout"] >= 6 * 30 + 300


def test_the_trigger_may_list_and_start_executions_of_its_state_machine_only(
    template_json: dict[str, Any], output_refs: dict[str, str]
) -> None:
    machine = output_refs["TrainingStateMachineArn"]
    statements = [
        s
        for logical_id in roles_assumed_by(template_json, "lambda.amazonaws.com")
        for s in role_statements(template_json, logical_id)
        if s.get("Sid") == "StartOneTrainingRun"
    ]
    assert statements == [
        {
            "Sid": "StartOneTrainingRun",
            "Action": ["states:ListExecutions", "states:StartExecution"],
            "Effect": "Allow",
            "Resource": ref(machine),
        }
    ]


def test_pipeline_functions_get_their_environment(template: Template, output_refs: dict[str, str]) -> None:
    lake = ref(output_refs["LakeBucketName"])
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "SLUICE_USECASE_FILE": "usecase.toml",
                        "LAKE_BUCKET": lake,
                        "MODEL_PACKAGE_GROUP": "sluice-telco-churn",
                    }
                )
            },
            "Architectures": ["arm64"],
            "Runtime": "python3.12",
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like({"POWERTOOLS_SERVICE_NAME": "training-set", "LAKE_BUCKET": lake})
            }
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like(
                    {"STATE_MACHINE_ARN": ref(output_refs["TrainingStateMachineArn"]), "SLUICE_USECASE": "telco_churn"}
                )
            }
        },
    )


def register_variables(template_json: dict[str, Any]) -> dict[str, Any]:
    """The register function's environment (the one that names its model package group)."""
    (variables,) = [
        r["Properties"]["Environment"]["Variables"]
        for r in template_json["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and "INFERENCE_IMAGE" in r["Properties"].get("Environment", {}).get("Variables", {})
    ]
    return dict(variables)


def test_a_heavy_gpu_endpoint_registers_its_models_for_its_image_and_gpu_inference_code(
    heavy_json: dict[str, Any], heavy_assembly: Assembly
) -> None:
    # Given the heavy (XGBoost, GPU endpoint) template: its endpoint model, training job and register function
    (model,) = [r for r in heavy_json["Resources"].values() if r["Type"] == "AWS::SageMaker::Model"]
    container = model["Properties"]["PrimaryContainer"]
    hyperparameters = create_training_job(state_machine_definition(heavy_json))["HyperParameters"]
    # When the register function's inference variables are read
    variables = register_variables(heavy_json)
    # Then a package's container is the endpoint's: its image, program and GPU source archive (not the training one)
    assert variables["INFERENCE_IMAGE"] == container["Image"]
    assert variables["INFERENCE_PROGRAM"] == container["Environment"]["SAGEMAKER_PROGRAM"] == "training/inference.py"
    assert variables["INFERENCE_CODE_URL"] == container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"]
    training_source = hyperparameters["sagemaker_submit_directory"].strip('"')
    gpu_source = variables["INFERENCE_CODE_URL"]["Fn::Sub"]
    assert gpu_source.startswith("s3://")
    assert training_source.startswith("s3://")
    assert gpu_source != training_source
    # (the archive at that URL installs onnxruntime-gpu)
    manifest = json.loads((heavy_assembly.outdir / f"{HEAVY_STACK}.assets.json").read_text())
    (archive,) = [
        heavy_assembly.outdir / entry["source"]["path"]
        for entry in manifest["files"].values()
        if any(gpu_source.endswith(f"/{d['objectKey']}") for d in entry["destinations"].values())
    ]
    with tarfile.open(archive) as tar:
        member = tar.extractfile("requirements.txt")
        assert member is not None
        requirements = member.read().decode()
    assert "onnxruntime-gpu" in requirements


def test_a_light_usecase_registers_its_models_in_the_training_image_without_an_environment(
    template_json: dict[str, Any],
) -> None:
    # Given the light telco template's register function
    variables = register_variables(template_json)
    # Then its packages name the training image and no inference code (no endpoint serves them)
    assert "INFERENCE_PROGRAM" not in variables
    assert "INFERENCE_CODE_URL" not in variables
    assert variables["INFERENCE_IMAGE"]


def test_the_training_source_archive_holds_code_requirements_and_usecase(assembly: Assembly) -> None:
    import tarfile

    manifest = json.loads((assembly.outdir / "Sluice-telco-churn.assets.json").read_text())
    (archive,) = [
        assembly.outdir / entry["source"]["path"]
        for entry in manifest["files"].values()
        if entry["source"]["path"].endswith(".tar.gz")
    ]
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"usecase.toml", "shared/registry/service.py", "shared/usecase/settings.py"} <= names
    assert all(
        name in {"usecase.toml", "requirements.txt"} or name.split("/")[0] in {"training", "shared"} for name in names
    )


# --- heavy models ------------------------------------------------------------------------------


def test_a_light_usecase_has_no_endpoint(template: Template) -> None:
    template.resource_count_is("AWS::SageMaker::Endpoint", 0)
    template.resource_count_is("AWS::SageMaker::Model", 0)


def test_a_heavy_endpoint_captures_data_to_the_lake(heavy: Template, heavy_json: dict[str, Any]) -> None:
    lake = heavy_json["Outputs"]["LakeBucketName"]["Value"]["Ref"]
    heavy.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [Match.object_like({"InstanceType": "ml.g4dn.xlarge", "InitialInstanceCount": 1})],
            "DataCaptureConfig": Match.object_like(
                {
                    "EnableCapture": True,
                    "DestinationS3Uri": {"Fn::Join": ["", ["s3://", ref(lake), "/capture/heavy_churn/"]]},
                }
            ),
        },
    )
    heavy.has_resource_properties(
        "AWS::SageMaker::Model",
        {"PrimaryContainer": Match.object_like({"ModelDataUrl": INITIAL_MODEL_DATA})},
    )


def test_the_endpoint_role_may_read_the_models_a_promotion_deploys(heavy_json: dict[str, Any]) -> None:
    # Given the heavy endpoint's role policy
    lake = heavy_json["Outputs"]["LakeBucketName"]["Value"]["Ref"]
    statements = [
        statement
        for resource in heavy_json["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy" and "EndpointRole" in json.dumps(resource["Properties"]["Roles"])
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]
    by_sid = {statement.get("Sid"): statement for statement in statements}
    # Then later versions (training outputs in the lake) can be read, and nothing else of the lake
    read = by_sid["ReadRegisteredModels"]
    assert read["Action"] == "s3:GetObject"
    assert read["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [lake, "Arn"]}, "/sagemaker/heavy_churn/jobs/*"]]}


def test_a_heavy_endpoint_updates_by_canary_and_rolls_back_on_its_alarms(
    heavy: Template, heavy_json: dict[str, Any]
) -> None:
    alarms = {
        logical_id: resource["Properties"]
        for logical_id, resource in heavy_json["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm" and resource["Properties"].get("Namespace") == "AWS/SageMaker"
    }
    by_metric = {props["MetricName"]: logical_id for logical_id, props in alarms.items()}
    assert set(by_metric) == {"Invocation5XXErrors", "ModelLatency"}
    for props in alarms.values():
        assert {d["Name"]: d["Value"] for d in props["Dimensions"]} == {
            "EndpointName": "sluice-heavy-churn",
            "VariantName": "AllTraffic",
        }
    heavy.has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "EndpointName": "sluice-heavy-churn",
            "DeploymentConfig": {
                "BlueGreenUpdatePolicy": Match.object_like(
                    {
                        "TrafficRoutingConfiguration": Match.object_like(
                            {"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}}
                        )
                    }
                ),
                "AutoRollbackConfiguration": {
                    "Alarms": [
                        {"AlarmName": ref(by_metric["Invocation5XXErrors"])},
                        {"AlarmName": ref(by_metric["ModelLatency"])},
                    ]
                },
            },
        },
    )
    assert heavy_json["Outputs"]["EndpointName"]["Value"] == "sluice-heavy-churn"


def test_the_heavy_variant_passes_cdk_nag_and_cfn_lint(heavy_assembly: Assembly) -> None:
    report = json.loads((heavy_assembly.outdir / "validation-report.json").read_text())
    (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert plugin["conclusion"] == "success"
    assert plugin["violations"] == []
    matches = lint_file(heavy_assembly.stacks[HEAVY_STACK], config=ManualArgs(regions=["us-east-1"]))
    assert [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E")] == []


def test_promotions_manage_the_heavy_endpoint_even_before_the_stack_deploys_it(
    heavy_without_endpoint: Assembly,
) -> None:
    # Given the heavy stack synthesized before any model exists
    template = heavy_without_endpoint.template(HEAVY_STACK)
    resources = template["Resources"]
    # Then it has no endpoint, but the endpoint's role and name are there for a promotion to shape one
    assert not [r for r in resources.values() if r["Type"] == "AWS::SageMaker::Endpoint"]
    assert template["Outputs"]["EndpointName"]["Value"] == "sluice-heavy-churn"
    role = template["Outputs"]["EndpointExecutionRoleArn"]["Value"]["Fn::GetAtt"][0]
    steps = [
        r["Properties"]["Environment"]["Variables"]
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function" and logical_id.startswith("PromotionStepFunction")
    ]
    assert steps
    assert steps[0]["SAGEMAKER_ENDPOINT_NAME"] == "sluice-heavy-churn"
    assert steps[0]["SAGEMAKER_EXECUTION_ROLE_ARN"] == {"Fn::GetAtt": [role, "Arn"]}
    # And it passes cdk-nag
    report = json.loads((heavy_without_endpoint.outdir / "validation-report.json").read_text())
    (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert plugin["violations"] == []
