"""One small creator per CloudFormation resource type, each calling the moto server's APIs.

Each creator receives the resource's *resolved* properties and returns its physical id (what
``Ref`` gives) and the attributes ``Fn::GetAtt`` may ask for. Only creation is emulated: there is no
update, no delete, no rollback (the embedded cloud is built fresh on every start). Properties a
creator does not list are ignored; where a property's effect is not emulated by moto at all (IAM
enforcement, KMS encryption at rest, lifecycle expiry, schedules firing) the API call still records it
so that ``Describe``/``Get`` calls answer as AWS would.

Special cases:

* ``Custom::S3BucketNotifications`` (CDK's bucket-notification custom resource) is applied directly
  with ``PutBucketNotificationConfiguration`` from its ``NotificationConfiguration`` property; CDK's
  helper function (``BucketNotificationsHandler...``) is skipped by the deployer.
* ``AWS::Lambda::Function`` is created in moto with a tiny stub zip so the API knows it, and is
  registered with the in-process runtime (:mod:`local.services.lambdas`) with its asset directory
  (``aws:asset:path`` metadata, relative to the cloud assembly) or its inline ``ZipFile`` code.
* ``AWS::Lambda::EventSourceMapping`` is recorded (not created in moto, which would invoke the
  function inside ``SendMessage``) as an :class:`local.services.event_sources.EventSourceMappingSpec`; SQS
  sources are polled by :class:`local.services.event_sources.SqsPoller`, other sources are not.
* ``AWS::S3::BucketPolicy`` drops ``aws:SecureTransport`` Deny statements (CDK's ``enforceSSL``): moto
  enforces bucket-policy Denies and the local endpoint is plain HTTP.
* ``AWS::IAM::Role`` ``ManagedPolicyArns`` naming AWS-managed policies are recorded as attributes but
  not attached (moto loads no AWS-managed policies by default, and IAM is not enforced anyway).
"""

from __future__ import annotations

import io
import json
import logging
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local.exceptions import StackDeploymentError
from local.services.apigateway import ApiRegistry
from local.services.event_sources import EventSourceMappingSpec
from local.services.lambda_code import FunctionSpec
from local.services.lambdas import InvokeConfig, LambdaRuntime
from local.template.model import Resource, Template
from local.template.naming import physical_name

logger = logging.getLogger(__name__)

STUB_ZIP_SOURCE = (
    "def handler(event, context):\n"
    "    raise RuntimeError('this stub is never run: the embedded cloud runs the asset in-process')\n"
)


@dataclass(frozen=True, kw_only=True)
class Created:
    """What a creator made: the ``Ref`` value and ``Fn::GetAtt`` attributes."""

    physical_id: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass(kw_only=True)
class DeployContext:
    """Everything a creator may use: the template, API clients, the Lambda runtime, where assets are."""

    template: Template
    client: Callable[[str], Any]
    """``client("s3")`` → a boto3 client pointed at the moto server."""
    lambdas: LambdaRuntime
    asset_root: Path
    state_dir: Path
    after_deployment: list[Callable[[], None]] = field(default_factory=list)
    """Steps that must wait until every resource exists (run in order by the deployer)."""
    event_source_mappings: list[EventSourceMappingSpec] = field(default_factory=list)
    """Every ``AWS::Lambda::EventSourceMapping``, for :class:`local.services.event_sources.SqsPoller`."""
    apis: ApiRegistry = field(default_factory=ApiRegistry)
    """The REST APIs, API keys and usage plans, for the HTTP front (:mod:`local.services.apigateway`)."""

    def name(self, resource: Resource, given: Any, *, max_length: int = 64, lowercase: bool = False) -> str:
        if given:
            return str(given)
        return physical_name(self.template.stack_name, resource.logical_id, max_length=max_length, lowercase=lowercase)

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        template = self.template
        return ":".join(
            [
                "arn",
                template.partition,
                service,
                template.region if region else "",
                template.account_id if account else "",
                resource,
            ]
        )


Creator = Callable[[DeployContext, Resource, dict[str, Any]], Created]
CREATORS: dict[str, Creator] = {}


def creates(resource_type: str) -> Callable[[Creator], Creator]:
    def register(creator: Creator) -> Creator:
        CREATORS[resource_type] = creator
        return creator

    return register


def _json(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def _tags(props: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"Key": str(tag["Key"]), "Value": str(tag["Value"])} for tag in props.get("Tags", [])]


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


# -- S3 -------------------------------------------------------------------------------------------


@creates("AWS::S3::Bucket")
def _bucket(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    s3 = ctx.client("s3")
    name = ctx.name(resource, props.get("BucketName"), max_length=63, lowercase=True)
    region = ctx.template.region
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    if status := props.get("VersioningConfiguration", {}).get("Status"):
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})
    if encryption := props.get("BucketEncryption"):
        rules = [
            _drop_none(
                {
                    "ApplyServerSideEncryptionByDefault": rule.get("ServerSideEncryptionByDefault"),
                    "BucketKeyEnabled": rule.get("BucketKeyEnabled"),
                }
            )
            for rule in encryption.get("ServerSideEncryptionConfiguration", [])
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if block := props.get("PublicAccessBlockConfiguration"):
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration={key: bool(value) for key, value in block.items()}
        )
    if logging_config := props.get("LoggingConfiguration"):
        enabled = _drop_none(
            {
                "TargetBucket": logging_config.get("DestinationBucketName", name),
                "TargetPrefix": logging_config.get("LogFilePrefix", ""),
            }
        )
        # moto checks the target's log-delivery grant, which CDK gives by a bucket policy that may not
        # exist yet: record the logging configuration once every resource is created.
        ctx.after_deployment.append(lambda: _put_bucket_logging(ctx, resource, name, enabled))
    if lifecycle := props.get("LifecycleConfiguration"):
        rules = [_lifecycle_rule(rule) for rule in lifecycle.get("Rules", [])]
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    if cors := props.get("CorsConfiguration"):
        s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": _cors_rules(cors.get("CorsRules", []))})
    if tags := _tags(props):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})
    if notifications := props.get("NotificationConfiguration"):
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration=_bucket_notifications(notifications)
        )
    suffix = ctx.template.url_suffix
    return Created(
        physical_id=name,
        attributes={
            "Arn": ctx.arn("s3", name, region=False, account=False),
            "DomainName": f"{name}.s3.{suffix}",
            "RegionalDomainName": f"{name}.s3.{region}.{suffix}",
            "DualStackDomainName": f"{name}.s3.dualstack.{region}.{suffix}",
            "WebsiteURL": f"http://{name}.s3-website-{region}.{suffix}",
        },
    )


def _put_bucket_logging(ctx: DeployContext, resource: Resource, bucket: str, enabled: Mapping[str, Any]) -> None:
    try:
        ctx.client("s3").put_bucket_logging(Bucket=bucket, BucketLoggingStatus={"LoggingEnabled": dict(enabled)})
    except ClientError as exc:
        logger.warning("%s: access logging not recorded locally (%s)", resource.logical_id, exc)


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """CloudFormation's lifecycle rule shape → the S3 API's."""
    filter_parts = _drop_none(
        {
            "Prefix": rule.get("Prefix"),
            "ObjectSizeGreaterThan": rule.get("ObjectSizeGreaterThan"),
            "ObjectSizeLessThan": rule.get("ObjectSizeLessThan"),
        }
    )
    tags = [{"Key": t["Key"], "Value": t["Value"]} for t in rule.get("TagFilters", [])]
    if tags or len(filter_parts) > 1:
        and_parts: dict[str, Any] = {**filter_parts, **({"Tags": tags} if tags else {})}
        rule_filter: dict[str, Any] = {"And": and_parts}
    else:
        rule_filter = filter_parts or {"Prefix": ""}
    api: dict[str, Any] = {"ID": rule.get("Id", uuid.uuid4().hex[:8]), "Status": rule["Status"], "Filter": rule_filter}
    expiration = _drop_none(
        {
            "Days": rule.get("ExpirationInDays"),
            "Date": rule.get("ExpirationDate"),
            "ExpiredObjectDeleteMarker": rule.get("ExpiredObjectDeleteMarker"),
        }
    )
    if expiration:
        api["Expiration"] = expiration
    transitions = list(rule.get("Transitions", [])) + ([rule["Transition"]] if "Transition" in rule else [])
    if transitions:
        api["Transitions"] = [
            _drop_none(
                {"Days": t.get("TransitionInDays"), "Date": t.get("TransitionDate"), "StorageClass": t["StorageClass"]}
            )
            for t in transitions
        ]
    if noncurrent := rule.get("NoncurrentVersionTransitions"):
        api["NoncurrentVersionTransitions"] = [
            _drop_none(
                {
                    "NoncurrentDays": t.get("TransitionInDays"),
                    "StorageClass": t["StorageClass"],
                    "NewerNoncurrentVersions": t.get("NewerNoncurrentVersions"),
                }
            )
            for t in noncurrent
        ]
    if "NoncurrentVersionExpiration" in rule:
        api["NoncurrentVersionExpiration"] = dict(rule["NoncurrentVersionExpiration"])
    elif "NoncurrentVersionExpirationInDays" in rule:
        api["NoncurrentVersionExpiration"] = {"NoncurrentDays": rule["NoncurrentVersionExpirationInDays"]}
    if abort := rule.get("AbortIncompleteMultipartUpload"):
        api["AbortIncompleteMultipartUpload"] = dict(abort)
    return api


def _cors_rules(rules: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        _drop_none(
            {
                "ID": rule.get("Id"),
                "AllowedMethods": rule["AllowedMethods"],
                "AllowedOrigins": rule["AllowedOrigins"],
                "AllowedHeaders": rule.get("AllowedHeaders"),
                "ExposeHeaders": rule.get("ExposedHeaders"),
                "MaxAgeSeconds": rule.get("MaxAge"),
            }
        )
        for rule in rules
    ]


def _notification_filter(cfn_filter: Mapping[str, Any] | None) -> dict[str, Any]:
    if not cfn_filter:
        return {}
    rules = cfn_filter.get("S3Key", {}).get("Rules", [])
    return {"Filter": {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}}}


def _bucket_notifications(cfn: Mapping[str, Any]) -> dict[str, Any]:
    """The bucket's own ``NotificationConfiguration`` (CloudFormation shape) → the S3 API's."""
    api: dict[str, Any] = {}
    for cfn_key, api_key, target_key, arn_key in (
        ("LambdaConfigurations", "LambdaFunctionConfigurations", "Function", "LambdaFunctionArn"),
        ("QueueConfigurations", "QueueConfigurations", "Queue", "QueueArn"),
        ("TopicConfigurations", "TopicConfigurations", "Topic", "TopicArn"),
    ):
        if cfn.get(cfn_key):
            api[api_key] = [
                {"Events": [c["Event"]], arn_key: c[target_key], **_notification_filter(c.get("Filter"))}
                for c in cfn[cfn_key]
            ]
    if cfn.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        api["EventBridgeConfiguration"] = {}
    return api


def _requires_tls(statement: Mapping[str, Any]) -> bool:
    condition = statement.get("Condition", {})
    return statement.get("Effect") == "Deny" and any("aws:SecureTransport" in test for test in condition.values())


@creates("AWS::S3::BucketPolicy")
def _bucket_policy(ctx: DeployContext, _resource: Resource, props: dict[str, Any]) -> Created:
    """The policy minus its TLS-only Deny: the local endpoint is plain HTTP on loopback.

    moto evaluates Deny statements of bucket policies, and CDK's ``enforceSSL`` denies every request
    whose ``aws:SecureTransport`` is false -- which every local request is.
    """
    document = (
        json.loads(props["PolicyDocument"]) if isinstance(props["PolicyDocument"], str) else props["PolicyDocument"]
    )
    statements = document.get("Statement", [])
    kept = [statement for statement in statements if not _requires_tls(statement)]
    note = "TLS-only Deny statement dropped (plain HTTP locally)" if len(kept) < len(statements) else ""
    if kept:
        ctx.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps({**document, "Statement": kept}))
    return Created(physical_id=str(props["Bucket"]), note=note)


@creates("Custom::S3BucketNotifications")
def _bucket_notifications_custom(ctx: DeployContext, _resource: Resource, props: dict[str, Any]) -> Created:
    configuration = dict(props.get("NotificationConfiguration", {}))
    ctx.client("s3").put_bucket_notification_configuration(
        Bucket=props["BucketName"], NotificationConfiguration=configuration
    )
    return Created(
        physical_id=f"{props['BucketName']}-notifications",
        note="applied with PutBucketNotificationConfiguration, not CDK's helper function",
    )


# -- IAM ------------------------------------------------------------------------------------------


def _attach(ctx: DeployContext, principal: str, kind: str, policy_arn: str) -> bool:
    iam = ctx.client("iam")
    attach = {"role": iam.attach_role_policy, "user": iam.attach_user_policy, "group": iam.attach_group_policy}
    try:
        attach[kind](**{f"{kind.capitalize()}Name": principal, "PolicyArn": policy_arn})
    except iam.exceptions.NoSuchEntityException:
        return False
    return True


@creates("AWS::IAM::Role")
def _role(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    iam = ctx.client("iam")
    name = ctx.name(resource, props.get("RoleName"), max_length=64)
    role = iam.create_role(
        **_drop_none(
            {
                "RoleName": name,
                "Path": props.get("Path"),
                "AssumeRolePolicyDocument": _json(props["AssumeRolePolicyDocument"]),
                "Description": props.get("Description"),
                "MaxSessionDuration": props.get("MaxSessionDuration"),
                "PermissionsBoundary": props.get("PermissionsBoundary"),
                "Tags": _tags(props) or None,
            }
        )
    )["Role"]
    for policy in props.get("Policies", []):
        iam.put_role_policy(
            RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=_json(policy["PolicyDocument"])
        )
    unattached = [arn for arn in props.get("ManagedPolicyArns", []) if not _attach(ctx, name, "role", arn)]
    return Created(
        physical_id=name,
        attributes={"Arn": role["Arn"], "RoleId": role["RoleId"], "UnattachedManagedPolicyArns": unattached},
        note=f"AWS-managed policies recorded, not attached: {', '.join(unattached)}" if unattached else "",
    )


@creates("AWS::IAM::Policy")
def _policy(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    iam = ctx.client("iam")
    document = _json(props["PolicyDocument"])
    name = props["PolicyName"]
    for role in props.get("Roles", []):
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=document)
    for user in props.get("Users", []):
        iam.put_user_policy(UserName=user, PolicyName=name, PolicyDocument=document)
    for group in props.get("Groups", []):
        iam.put_group_policy(GroupName=group, PolicyName=name, PolicyDocument=document)
    return Created(physical_id=physical_name(ctx.template.stack_name, resource.logical_id, max_length=128))


@creates("AWS::IAM::ManagedPolicy")
def _managed_policy(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    policy = ctx.client("iam").create_policy(
        **_drop_none(
            {
                "PolicyName": ctx.name(resource, props.get("ManagedPolicyName"), max_length=128),
                "Path": props.get("Path"),
                "PolicyDocument": _json(props["PolicyDocument"]),
                "Description": props.get("Description"),
            }
        )
    )["Policy"]
    for kind, key in (("role", "Roles"), ("user", "Users"), ("group", "Groups")):
        for principal in props.get(key, []):
            _attach(ctx, principal, kind, policy["Arn"])
    return Created(physical_id=policy["Arn"], attributes={"PolicyArn": policy["Arn"], "PolicyId": policy["PolicyId"]})


# -- Lambda ---------------------------------------------------------------------------------------


def _zip(files: Mapping[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _asset_dir_from_manifest(ctx: DeployContext, s3_key: Any) -> Path | None:
    """The asset directory for a ``<hash>.zip`` S3 key, from ``<stack>.assets.json`` or ``asset.<hash>/``.

    CDK writes ``aws:asset:path`` metadata only when asset metadata is enabled (the CDK CLI enables
    it; ``python app.py`` alone does not), so the assets manifest is the fallback.
    """
    if not isinstance(s3_key, str) or not s3_key.endswith(".zip"):
        return None
    asset_hash = s3_key.rsplit("/", 1)[-1].removesuffix(".zip")
    manifest = ctx.asset_root / f"{ctx.template.stack_name}.assets.json"
    if manifest.is_file():
        source = json.loads(manifest.read_text()).get("files", {}).get(asset_hash, {}).get("source", {})
        if source.get("packaging") == "zip" and source.get("path"):
            return ctx.asset_root / source["path"]
    candidate = ctx.asset_root / f"asset.{asset_hash}"
    return candidate if candidate.is_dir() else None


def _code_dir(ctx: DeployContext, resource: Resource, props: Mapping[str, Any]) -> Path | None:
    if resource.asset_path:
        path = Path(resource.asset_path)
        return path if path.is_absolute() else ctx.asset_root / path
    if from_manifest := _asset_dir_from_manifest(ctx, props.get("Code", {}).get("S3Key")):
        return from_manifest
    inline = props.get("Code", {}).get("ZipFile")
    if inline:
        directory = ctx.state_dir / "inline" / resource.logical_id
        directory.mkdir(parents=True, exist_ok=True)
        module = str(props.get("Handler", "index.handler")).rpartition(".")[0] or "index"
        (directory / f"{module}.py").write_text(str(inline))
        return directory
    return None


@creates("AWS::Lambda::Function")
def _function(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    name = ctx.name(resource, props.get("FunctionName"), max_length=64)
    module = str(props.get("Handler", "index.handler")).rpartition(".")[0] or "index"
    environment = {key: str(value) for key, value in props.get("Environment", {}).get("Variables", {}).items()}
    created = ctx.client("lambda").create_function(
        **_drop_none(
            {
                "FunctionName": name,
                "Runtime": props.get("Runtime", "python3.12"),
                "Role": props["Role"],
                "Handler": props.get("Handler", "index.handler"),
                "Code": {"ZipFile": _zip({f"{module.replace('.', '/')}.py": STUB_ZIP_SOURCE})},
                "Description": props.get("Description"),
                "Timeout": props.get("Timeout"),
                "MemorySize": props.get("MemorySize"),
                "Environment": {"Variables": environment} if environment else None,
                "Architectures": props.get("Architectures"),
                "DeadLetterConfig": props.get("DeadLetterConfig"),
                "TracingConfig": props.get("TracingConfig"),
                "Tags": {t["Key"]: t["Value"] for t in _tags(props)} or None,
            }
        )
    )
    code_dir = _code_dir(ctx, resource, props)
    ctx.lambdas.register(
        FunctionSpec(
            name=name,
            arn=created["FunctionArn"],
            handler=str(props.get("Handler", "index.handler")),
            code_dir=code_dir,
            environment=environment,
            timeout_s=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            dead_letter_arn=props.get("DeadLetterConfig", {}).get("TargetArn"),
            log_group_name=str(props.get("LoggingConfig", {}).get("LogGroup", "")),
        )
    )
    return Created(
        physical_id=name,
        attributes={"Arn": created["FunctionArn"], "CodeDir": str(code_dir) if code_dir else None},
        note=f"runs in-process from {code_dir}" if code_dir else "no local code: invocations fail",
    )


@creates("AWS::Lambda::LayerVersion")
def _layer(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    name = ctx.name(resource, props.get("LayerName"), max_length=64)
    layer = ctx.client("lambda").publish_layer_version(
        **_drop_none(
            {
                "LayerName": name,
                "Description": props.get("Description"),
                "Content": {"ZipFile": _zip({"python/README.txt": "metadata only locally"})},
                "CompatibleRuntimes": props.get("CompatibleRuntimes"),
                "CompatibleArchitectures": props.get("CompatibleArchitectures"),
            }
        )
    )
    return Created(
        physical_id=layer["LayerVersionArn"],
        attributes={"LayerVersionArn": layer["LayerVersionArn"]},
        note="metadata only: handlers import the repository's code instead",
    )


@creates("AWS::Lambda::Permission")
def _permission(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    ctx.client("lambda").add_permission(
        **_drop_none(
            {
                "FunctionName": props["FunctionName"],
                "StatementId": resource.logical_id,
                "Action": props["Action"],
                "Principal": props["Principal"],
                "SourceArn": props.get("SourceArn"),
                "SourceAccount": props.get("SourceAccount"),
            }
        )
    )
    return Created(physical_id=resource.logical_id, note="recorded; not enforced")


@creates("AWS::Lambda::EventInvokeConfig")
def _event_invoke_config(ctx: DeployContext, _resource: Resource, props: dict[str, Any]) -> Created:
    destinations = props.get("DestinationConfig", {})
    config = InvokeConfig(
        maximum_retry_attempts=int(props.get("MaximumRetryAttempts", 2)),
        maximum_event_age_s=int(props.get("MaximumEventAgeInSeconds", 21600)),
        on_failure=destinations.get("OnFailure", {}).get("Destination"),
        on_success=destinations.get("OnSuccess", {}).get("Destination"),
    )
    ctx.client("lambda").put_function_event_invoke_config(
        **_drop_none(
            {
                "FunctionName": props["FunctionName"],
                "MaximumRetryAttempts": config.maximum_retry_attempts,
                "MaximumEventAgeInSeconds": config.maximum_event_age_s,
                "DestinationConfig": destinations or None,
            }
        )
    )
    ctx.lambdas.put_invoke_config(str(props["FunctionName"]), config)
    return Created(physical_id=f"{props['FunctionName']}:{props.get('Qualifier', '$LATEST')}")


@creates("AWS::Lambda::EventSourceMapping")
def _event_source_mapping(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    mapping_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ctx.template.stack_name}/{resource.logical_id}"))
    spec = EventSourceMappingSpec.from_properties(mapping_id, props)
    ctx.event_source_mappings.append(spec)
    polled = spec.is_sqs and spec.enabled
    return Created(
        physical_id=mapping_id,
        attributes={"Id": mapping_id, "EventSourceArn": spec.event_source_arn, "Function": spec.function_name},
        note="SQS source polled locally" if polled else "recorded only: the event source is not polled",
    )


# -- SQS / SNS ------------------------------------------------------------------------------------

_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
)


@creates("AWS::SQS::Queue")
def _queue(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    fifo = str(props.get("FifoQueue", "false")).lower() == "true"
    name = props.get("QueueName") or ctx.name(resource, None, max_length=75 if fifo else 80) + (".fifo" if fifo else "")
    attributes = {key: _attribute(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
    for key in ("RedrivePolicy", "RedriveAllowPolicy"):
        if key in props:
            attributes[key] = _json(props[key])
    sqs = ctx.client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = ctx.arn("sqs", name)
    return Created(physical_id=url, attributes={"Arn": arn, "QueueName": name, "QueueUrl": url})


def _attribute(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


@creates("AWS::SQS::QueuePolicy")
def _queue_policy(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    for url in props.get("Queues", []):
        ctx.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": _json(props["PolicyDocument"])})
    return Created(physical_id=resource.logical_id)


@creates("AWS::SNS::Topic")
def _topic(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    fifo = str(props.get("FifoTopic", "false")).lower() == "true"
    name = props.get("TopicName") or ctx.name(resource, None, max_length=251) + (".fifo" if fifo else "")
    attributes = {key: _attribute(props[key]) for key in ("DisplayName", "KmsMasterKeyId", "FifoTopic") if key in props}
    sns = ctx.client("sns")
    arn = sns.create_topic(**_drop_none({"Name": name, "Attributes": attributes, "Tags": _tags(props) or None}))[
        "TopicArn"
    ]
    for subscription in props.get("Subscription", []):
        sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
    return Created(physical_id=arn, attributes={"TopicArn": arn, "TopicName": name})


@creates("AWS::SNS::TopicPolicy")
def _topic_policy(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    for topic in props.get("Topics", []):
        ctx.client("sns").set_topic_attributes(
            TopicArn=topic, AttributeName="Policy", AttributeValue=_json(props["PolicyDocument"])
        )
    return Created(physical_id=resource.logical_id)


@creates("AWS::SNS::Subscription")
def _subscription(ctx: DeployContext, _resource: Resource, props: dict[str, Any]) -> Created:
    attributes = {
        key: _json(props[key]) if key in {"FilterPolicy", "RedrivePolicy", "DeliveryPolicy"} else _attribute(props[key])
        for key in ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy", "DeliveryPolicy")
        if key in props
    }
    arn = ctx.client("sns").subscribe(
        TopicArn=props["TopicArn"],
        Protocol=props["Protocol"],
        Endpoint=props.get("Endpoint", ""),
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    return Created(physical_id=arn, attributes={"Arn": arn})


# -- KMS, DynamoDB, Logs, CloudWatch, EventBridge, Step Functions, SSM ---------------------------


@creates("AWS::KMS::Key")
def _key(ctx: DeployContext, _resource: Resource, props: dict[str, Any]) -> Created:
    kms = ctx.client("kms")
    metadata = kms.create_key(
        **_drop_none(
            {
                "Description": props.get("Description"),
                "KeyUsage": props.get("KeyUsage"),
                "KeySpec": props.get("KeySpec"),
                "Policy": _json(props["KeyPolicy"]) if "KeyPolicy" in props else None,
                "Tags": [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in _tags(props)] or None,
            }
        )
    )["KeyMetadata"]
    if str(props.get("EnableKeyRotation", "false")).lower() == "true":
        kms.enable_key_rotation(KeyId=metadata["KeyId"])
    return Created(
        physical_id=metadata["KeyId"],
        attributes={"Arn": metadata["Arn"], "KeyId": metadata["KeyId"]},
        note="keys exist; objects are not actually encrypted",
    )


@creates("AWS::KMS::Alias")
def _alias(ctx: DeployContext, _resource: Resource, props: dict[str, Any]) -> Created:
    ctx.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
    return Created(physical_id=str(props["AliasName"]))


@creates("AWS::DynamoDB::Table")
def _table(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    dynamodb = ctx.client("dynamodb")
    name = ctx.name(resource, props.get("TableName"), max_length=255)
    sse = props.get("SSESpecification")
    description = dynamodb.create_table(
        **_drop_none(
            {
                "TableName": name,
                "KeySchema": props["KeySchema"],
                "AttributeDefinitions": props.get("AttributeDefinitions", []),
                "BillingMode": props.get("BillingMode", "PROVISIONED"),
                "ProvisionedThroughput": props.get("ProvisionedThroughput"),
                "GlobalSecondaryIndexes": props.get("GlobalSecondaryIndexes"),
                "LocalSecondaryIndexes": props.get("LocalSecondaryIndexes"),
                "StreamSpecification": props.get("StreamSpecification"),
                "SSESpecification": _drop_none(
                    {
                        "Enabled": sse.get("SSEEnabled"),
                        "SSEType": sse.get("SSEType"),
                        "KMSMasterKeyId": sse.get("KMSMasterKeyId"),
                    }
                )
                if sse
                else None,
                "TableClass": props.get("TableClass"),
                "DeletionProtectionEnabled": props.get("DeletionProtectionEnabled"),
                "Tags": _tags(props) or None,
            }
        )
    )["TableDescription"]
    if ttl := props.get("TimeToLiveSpecification"):
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": bool(ttl.get("Enabled")), "AttributeName": ttl["AttributeName"]},
        )
    if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    return Created(
        physical_id=name,
        attributes={"Arn": description["TableArn"], "StreamArn": description.get("LatestStreamArn")},
    )


@creates("AWS::Logs::LogGroup")
def _log_group(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    logs = ctx.client("logs")
    name = ctx.name(resource, props.get("LogGroupName"), max_length=512)
    logs.create_log_group(**_drop_none({"logGroupName": name, "kmsKeyId": props.get("KmsKeyId")}))
    if retention := props.get("RetentionInDays"):
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(retention))
    return Created(physical_id=name, attributes={"Arn": ctx.arn("logs", f"log-group:{name}:*")})


_ALARM_KEYS = (
    "AlarmDescription",
    "ActionsEnabled",
    "AlarmActions",
    "OKActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
)


@creates("AWS::CloudWatch::Alarm")
def _alarm(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    name = ctx.name(resource, props.get("AlarmName"), max_length=255)
    arguments: dict[str, Any] = {key: props[key] for key in _ALARM_KEYS if key in props}
    for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if key in arguments:
            arguments[key] = int(arguments[key])
    if "ActionsEnabled" in arguments:
        arguments["ActionsEnabled"] = str(arguments["ActionsEnabled"]).lower() == "true"
    if "Threshold" in props:
        arguments["Threshold"] = float(props["Threshold"])
    ctx.client("cloudwatch").put_metric_alarm(AlarmName=name, **arguments)
    return Created(
        physical_id=name,
        attributes={"Arn": ctx.arn("cloudwatch", f"alarm:{name}")},
        note="evaluated locally (local/services/alarms.py): state, actions and the EventBridge event",
    )


@creates("AWS::CloudWatch::Dashboard")
def _dashboard(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    name = ctx.name(resource, props.get("DashboardName"), max_length=255)
    ctx.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=_json(props["DashboardBody"]))
    return Created(
        physical_id=name,
        attributes={},
        note="stored (GetDashboard returns its body, widgets resolved); no console renders it locally",
    )


@creates("AWS::Events::Rule")
def _rule(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    events = ctx.client("events")
    name = ctx.name(resource, props.get("Name"), max_length=64)
    bus = props.get("EventBusName")
    arn = events.put_rule(
        **_drop_none(
            {
                "Name": name,
                "EventPattern": _json(props["EventPattern"]) if "EventPattern" in props else None,
                "ScheduleExpression": props.get("ScheduleExpression"),
                "State": props.get("State", "ENABLED"),
                "Description": props.get("Description"),
                "RoleArn": props.get("RoleArn"),
                "EventBusName": bus,
            }
        )
    )["RuleArn"]
    targets = [
        _drop_none(
            {
                "Id": target["Id"],
                "Arn": target["Arn"],
                "RoleArn": target.get("RoleArn"),
                "Input": target.get("Input"),
                "InputPath": target.get("InputPath"),
                "InputTransformer": target.get("InputTransformer"),
                "RetryPolicy": target.get("RetryPolicy"),
                "DeadLetterConfig": target.get("DeadLetterConfig"),
            }
        )
        for target in props.get("Targets", [])
    ]
    if targets:
        events.put_targets(**_drop_none({"Rule": name, "EventBusName": bus, "Targets": targets}))
    expression = str(props.get("ScheduleExpression") or "")
    note = ""
    if expression:
        fires = expression.startswith("rate(")
        note = f"schedule {expression}: " + (
            "fired by local/services/schedules.py" if fires else "not fired locally (cron)"
        )
    return Created(physical_id=name, attributes={"Arn": arn}, note=note)


@creates("AWS::StepFunctions::StateMachine")
def _state_machine(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    definition = props.get("DefinitionString") or props.get("Definition")
    if definition is None:
        raise StackDeploymentError(f"{resource.logical_id}: DefinitionS3Location is not supported locally")
    definition = _json(definition)
    for key, value in props.get("DefinitionSubstitutions", {}).items():
        definition = definition.replace("${" + key + "}", str(value))
    name = ctx.name(resource, props.get("StateMachineName"), max_length=80)
    created = ctx.client("stepfunctions").create_state_machine(
        **_drop_none(
            {
                "name": name,
                "definition": definition,
                "roleArn": props["RoleArn"],
                "type": props.get("StateMachineType"),
                "loggingConfiguration": _state_machine_logging(props.get("LoggingConfiguration")),
                "tracingConfiguration": _state_machine_tracing(props.get("TracingConfiguration")),
            }
        )
    )
    arn = created["stateMachineArn"]
    return Created(physical_id=arn, attributes={"Arn": arn, "Name": name}, note="executions run in moto's interpreter")


@creates("AWS::SageMaker::ModelPackageGroup")
def _model_package_group(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    name = ctx.name(resource, props.get("ModelPackageGroupName"), max_length=63)
    created = ctx.client("sagemaker").create_model_package_group(
        **_drop_none(
            {
                "ModelPackageGroupName": name,
                "ModelPackageGroupDescription": props.get("ModelPackageGroupDescription"),
            }
        )
    )
    arn = created["ModelPackageGroupArn"]
    return Created(
        physical_id=name,
        attributes={"ModelPackageGroupArn": arn, "ModelPackageGroupName": name},
        note="the model registry (metadata, as in SageMaker)",
    )


def _state_machine_logging(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """CloudFormation's LoggingConfiguration in the Step Functions API's casing (recorded; moto writes no logs)."""
    if not config:
        return None
    return _drop_none(
        {
            "level": config.get("Level"),
            "includeExecutionData": config.get("IncludeExecutionData"),
            "destinations": [
                {"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
                for d in config.get("Destinations", [])
                if "CloudWatchLogsLogGroup" in d
            ]
            or None,
        }
    )


def _state_machine_tracing(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """CloudFormation's TracingConfiguration in the API's casing (recorded; no X-Ray locally)."""
    return None if not config else {"enabled": bool(config.get("Enabled"))}


@creates("AWS::SSM::Parameter")
def _parameter(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    name = ctx.name(resource, props.get("Name"), max_length=1011)
    ctx.client("ssm").put_parameter(
        **_drop_none(
            {
                "Name": name,
                "Value": str(props["Value"]),
                "Type": props.get("Type", "String"),
                "Description": props.get("Description"),
                "AllowedPattern": props.get("AllowedPattern"),
                "Tier": props.get("Tier"),
                "DataType": props.get("DataType"),
            }
        )
    )
    return Created(physical_id=name, attributes={"Type": props.get("Type", "String"), "Value": str(props["Value"])})
