"""Creators for the serving resources: API Gateway REST APIs (v1) and SageMaker hosting.

Registered into :data:`local.template.resources.CREATORS` on import (the deployer imports this module).

API Gateway: ``RestApi``, ``Resource``, ``Method``, ``Authorizer``, ``Deployment``, ``Stage``, ``ApiKey``,
``UsagePlan`` and ``UsagePlanKey`` are created in moto's API Gateway (so ``GetRestApis``,
``GetResources``, ``GetApiKey`` with ``includeValue`` ... answer as on AWS, with moto's ids) and
recorded in the deployment's :class:`local.services.apigateway.ApiRegistry`, which the HTTP front
(:mod:`local.services.apigateway`) serves. ``Ref`` gives what CloudFormation gives: the API id, resource id,
deployment id, stage name, key id, usage plan id, authorizer id; ``Fn::GetAtt RestApi.RootResourceId`` the root
resource id. A ``COGNITO_USER_POOLS`` authorizer is enforced by the front (the method's ``AuthorizerId``
names it; see :mod:`local.services.cognito`). ``AWS::ApiGateway::Account`` (the CloudWatch role setting) is
recorded only.

SageMaker hosting: ``Model``, ``EndpointConfig`` and ``Endpoint`` are created through moto's
SageMaker API; invocations are served by :mod:`local.services.sagemaker_endpoints`. ``Ref`` gives the ARN
(as CloudFormation does), ``Fn::GetAtt`` the ``...Name`` attributes. ``DeploymentConfig``
(blue/green guardrails) and ``ShadowProductionVariants`` are recorded in the template only.
"""

from __future__ import annotations

from typing import Any

from local.services.apigateway import (
    COGNITO_USER_POOLS,
    ApiAuthorizer,
    ApiKey,
    ApiMethod,
    ApiResource,
    ApiStage,
    Quota,
    RestApi,
    Throttle,
    UsagePlan,
)
from local.services.apigateway import function_arn_from_uri as _function_arn
from local.template.model import Resource
from local.template.resources import Created, DeployContext, creates


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _bool(value: Any, default: bool = False) -> bool:
    return default if value is None else str(value).lower() == "true"


def _throttle(rate: Any, burst: Any) -> Throttle | None:
    if rate is None and burst is None:
        return None
    return Throttle(
        rate_per_s=float(rate if rate is not None else 10_000), burst=int(burst if burst is not None else 5_000)
    )


# -- API Gateway -----------------------------------------------------------------------------------


@creates("AWS::ApiGateway::RestApi")
def _rest_api(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    body_note = "an OpenAPI Body is not imported locally" if "Body" in props or "BodyS3Location" in props else ""
    apigateway = ctx.client("apigateway")
    name = ctx.name(resource, props.get("Name"), max_length=128)
    created = apigateway.create_rest_api(
        **_drop_none(
            {
                "name": name,
                "description": props.get("Description"),
                "binaryMediaTypes": props.get("BinaryMediaTypes"),
                "apiKeySource": props.get("ApiKeySourceType"),
                "endpointConfiguration": {"types": props["EndpointConfiguration"]["Types"]}
                if "EndpointConfiguration" in props
                else None,
            }
        )
    )
    api_id = created["id"]
    root = next(r["id"] for r in apigateway.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    api = RestApi(api_id=api_id, name=name, root_resource_id=root, binary_media_types=props.get("BinaryMediaTypes", []))
    api.resources[root] = ApiResource(resource_id=root, parent_id=None, path_part="")
    ctx.apis.apis[api_id] = api
    return Created(
        physical_id=api_id,
        attributes={"RootResourceId": root, "RestApiId": api_id},
        note=body_note or "served over HTTP by the local API front",
    )


@creates("AWS::ApiGateway::Resource")
def _api_resource(ctx: DeployContext, _resource: Resource, props: dict[str, Any]) -> Created:
    api = ctx.apis.api(props["RestApiId"])
    created = ctx.client("apigateway").create_resource(
        restApiId=api.api_id, parentId=props["ParentId"], pathPart=props["PathPart"]
    )
    api.resources[created["id"]] = ApiResource(
        resource_id=created["id"], parent_id=props["ParentId"], path_part=props["PathPart"]
    )
    return Created(physical_id=created["id"], attributes={"ResourceId": created["id"]})


@creates("AWS::ApiGateway::Method")
def _method(ctx: DeployContext, _resource: Resource, props: dict[str, Any]) -> Created:
    api = ctx.apis.api(props["RestApiId"])
    resource_id = props["ResourceId"]
    http_method = str(props["HttpMethod"]).upper()
    integration = props.get("Integration", {})
    integration_type = str(integration.get("Type", "MOCK"))
    uri = str(integration.get("Uri", ""))
    apigateway = ctx.client("apigateway")
    authorization = str(props.get("AuthorizationType", "NONE"))
    key_required = _bool(props.get("ApiKeyRequired"))
    apigateway.put_method(
        restApiId=api.api_id,
        resourceId=resource_id,
        httpMethod=http_method,
        authorizationType=authorization,
        apiKeyRequired=key_required,
    )
    if integration:
        apigateway.put_integration(
            **_drop_none(
                {
                    "restApiId": api.api_id,
                    "resourceId": resource_id,
                    "httpMethod": http_method,
                    "type": integration_type,
                    "integrationHttpMethod": integration.get("IntegrationHttpMethod"),
                    "uri": uri or None,
                }
            )
        )
    if resource_id not in api.resources:
        api.resources[resource_id] = ApiResource(resource_id=resource_id, parent_id=None, path_part="")
    function_arn = _function_arn(uri) if integration_type == "AWS_PROXY" else None
    authorizer_id = str(props["AuthorizerId"]) if props.get("AuthorizerId") else None
    api.resources[resource_id].methods[http_method] = ApiMethod(
        http_method=http_method,
        authorization_type=authorization,
        authorizer_id=authorizer_id,
        api_key_required=key_required,
        integration_type=integration_type,
        function_arn=function_arn,
    )
    note = "" if function_arn else f"{integration_type} integration: not run locally (answers 500)"
    if authorization not in ("NONE", "", COGNITO_USER_POOLS):
        note = f"{note}; {authorization} authorization not enforced locally".lstrip("; ")
    return Created(physical_id=f"{api.api_id}-{resource_id}-{http_method}", note=note)


@creates("AWS::ApiGateway::Authorizer")
def _authorizer(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    api = ctx.apis.api(props["RestApiId"])
    name = ctx.name(resource, props.get("Name"), max_length=128)
    authorizer_type = str(props["Type"])
    identity_source = str(props.get("IdentitySource") or "method.request.header.Authorization")
    provider_arns = tuple(str(arn) for arn in props.get("ProviderARNs") or ())
    created = ctx.client("apigateway").create_authorizer(
        **_drop_none(
            {
                "restApiId": api.api_id,
                "name": name,
                "type": authorizer_type,
                "providerARNs": list(provider_arns) or None,
                "authorizerUri": props.get("AuthorizerUri"),
                "identitySource": identity_source,
                "authorizerResultTtlInSeconds": int(props["AuthorizerResultTtlInSeconds"])
                if "AuthorizerResultTtlInSeconds" in props
                else None,
            }
        )
    )
    api.authorizers[created["id"]] = ApiAuthorizer(
        authorizer_id=created["id"],
        name=name,
        type=authorizer_type,
        provider_arns=provider_arns,
        identity_source=identity_source,
    )
    note = "enforced by the local API front" if authorizer_type == COGNITO_USER_POOLS else "recorded only"
    return Created(physical_id=created["id"], attributes={"AuthorizerId": created["id"]}, note=note)


def _stage(api: RestApi, name: str, props: dict[str, Any]) -> None:
    stage = ApiStage(name=name, variables={str(k): str(v) for k, v in (props.get("Variables") or {}).items()})
    for setting in props.get("MethodSettings") or []:
        throttle = _throttle(setting.get("ThrottlingRateLimit"), setting.get("ThrottlingBurstLimit"))
        if throttle is not None:
            stage.method_throttles.append(
                (str(setting.get("ResourcePath", "/*")), str(setting.get("HttpMethod", "*")), throttle)
            )
    api.stages[name] = stage


@creates("AWS::ApiGateway::Deployment")
def _deployment(ctx: DeployContext, _resource: Resource, props: dict[str, Any]) -> Created:
    api = ctx.apis.api(props["RestApiId"])
    stage_name = props.get("StageName")
    created = ctx.client("apigateway").create_deployment(
        **_drop_none({"restApiId": api.api_id, "stageName": stage_name, "description": props.get("Description")})
    )
    if stage_name:
        _stage(api, str(stage_name), props.get("StageDescription") or {})
    return Created(physical_id=created["id"], attributes={"DeploymentId": created["id"]})


@creates("AWS::ApiGateway::Stage")
def _api_stage(ctx: DeployContext, _resource: Resource, props: dict[str, Any]) -> Created:
    api = ctx.apis.api(props["RestApiId"])
    name = str(props["StageName"])
    ctx.client("apigateway").create_stage(
        **_drop_none(
            {
                "restApiId": api.api_id,
                "stageName": name,
                "deploymentId": props["DeploymentId"],
                "description": props.get("Description"),
                "variables": props.get("Variables"),
                "tracingEnabled": _bool(props.get("TracingEnabled")) if "TracingEnabled" in props else None,
            }
        )
    )
    _stage(api, name, props)
    return Created(physical_id=name)


@creates("AWS::ApiGateway::ApiKey")
def _api_key(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    apigateway = ctx.client("apigateway")
    name = ctx.name(resource, props.get("Name"), max_length=128)
    enabled = _bool(props.get("Enabled"), default=False)
    created = apigateway.create_api_key(
        **_drop_none(
            {
                "name": name,
                "description": props.get("Description"),
                "enabled": enabled,
                "value": props.get("Value"),
                "stageKeys": [
                    {"restApiId": s.get("RestApiId"), "stageName": s.get("StageName")}
                    for s in props.get("StageKeys", [])
                ]
                or None,
            }
        )
    )
    value = apigateway.get_api_key(apiKey=created["id"], includeValue=True)["value"]
    ctx.apis.keys[created["id"]] = ApiKey(key_id=created["id"], value=value, name=name, enabled=enabled)
    note = "" if enabled else "disabled (CloudFormation's default: set Enabled)"
    return Created(physical_id=created["id"], attributes={"APIKeyId": created["id"]}, note=note)


@creates("AWS::ApiGateway::UsagePlan")
def _usage_plan(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    name = ctx.name(resource, props.get("UsagePlanName"), max_length=128)
    throttle = props.get("Throttle") or {}
    quota = props.get("Quota") or {}
    stages = props.get("ApiStages") or []
    created = ctx.client("apigateway").create_usage_plan(
        **_drop_none(
            {
                "name": name,
                "description": props.get("Description"),
                "apiStages": [{"apiId": s["ApiId"], "stage": s["Stage"]} for s in stages] or None,
                "throttle": _drop_none(
                    {"rateLimit": throttle.get("RateLimit"), "burstLimit": throttle.get("BurstLimit")}
                )
                or None,
                "quota": _drop_none(
                    {"limit": quota.get("Limit"), "period": quota.get("Period"), "offset": quota.get("Offset")}
                )
                or None,
            }
        )
    )
    plan = UsagePlan(
        plan_id=created["id"],
        name=name,
        throttle=_throttle(throttle.get("RateLimit"), throttle.get("BurstLimit")),
        quota=Quota(limit=int(quota["Limit"]), period=str(quota.get("Period", "DAY"))) if "Limit" in quota else None,
    )
    for api_stage in stages:
        per_method = api_stage.get("Throttle") or {}
        # per-method throttles ("/path/METHOD" → settings): the strictest one stands for the stage locally
        candidates = [_throttle(t.get("RateLimit"), t.get("BurstLimit")) for t in per_method.values()]
        stage_throttle = min((c for c in candidates if c), key=lambda t: t.rate_per_s, default=None)
        plan.stages[(str(api_stage["ApiId"]), str(api_stage["Stage"]))] = stage_throttle
    ctx.apis.usage_plans[plan.plan_id] = plan
    return Created(physical_id=plan.plan_id, attributes={"Id": plan.plan_id})


@creates("AWS::ApiGateway::UsagePlanKey")
def _usage_plan_key(ctx: DeployContext, _resource: Resource, props: dict[str, Any]) -> Created:
    plan_id, key_id = str(props["UsagePlanId"]), str(props["KeyId"])
    ctx.client("apigateway").create_usage_plan_key(
        usagePlanId=plan_id, keyId=key_id, keyType=props.get("KeyType", "API_KEY")
    )
    ctx.apis.usage_plans[plan_id].key_ids.add(key_id)
    return Created(physical_id=key_id, attributes={"Id": key_id})


@creates("AWS::ApiGateway::Account")
def _account(_ctx: DeployContext, resource: Resource, _props: dict[str, Any]) -> Created:
    return Created(physical_id=resource.logical_id, note="recorded only (no execution logs locally)")


# -- SageMaker hosting -----------------------------------------------------------------------------


def _container(container: dict[str, Any] | None) -> dict[str, Any] | None:
    if not container:
        return None
    return _drop_none(
        {
            "Image": container.get("Image"),
            "ModelDataUrl": container.get("ModelDataUrl"),
            "Environment": container.get("Environment"),
            "Mode": container.get("Mode"),
            "ContainerHostname": container.get("ContainerHostname"),
            "ModelPackageName": container.get("ModelPackageName"),
        }
    )


@creates("AWS::SageMaker::Model")
def _model(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    name = ctx.name(resource, props.get("ModelName"), max_length=63)
    created = ctx.client("sagemaker").create_model(
        **_drop_none(
            {
                "ModelName": name,
                "PrimaryContainer": _container(props.get("PrimaryContainer")),
                "Containers": [_container(c) for c in props.get("Containers", [])] or None,
                "ExecutionRoleArn": props.get("ExecutionRoleArn"),
            }
        )
    )
    return Created(physical_id=created["ModelArn"], attributes={"ModelName": name})


@creates("AWS::SageMaker::EndpointConfig")
def _endpoint_config(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    name = ctx.name(resource, props.get("EndpointConfigName"), max_length=63)
    variants = [
        _drop_none(
            {
                "VariantName": v.get("VariantName"),
                "ModelName": v.get("ModelName"),
                "InitialInstanceCount": int(v["InitialInstanceCount"]) if "InitialInstanceCount" in v else None,
                "InstanceType": v.get("InstanceType"),
                "InitialVariantWeight": float(v["InitialVariantWeight"]) if "InitialVariantWeight" in v else None,
                "ServerlessConfig": v.get("ServerlessConfig"),
            }
        )
        for v in props.get("ProductionVariants", [])
    ]
    created = ctx.client("sagemaker").create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants)
    note = "shadow variants recorded only" if props.get("ShadowProductionVariants") else ""
    return Created(physical_id=created["EndpointConfigArn"], attributes={"EndpointConfigName": name}, note=note)


@creates("AWS::SageMaker::Endpoint")
def _endpoint(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    name = ctx.name(resource, props.get("EndpointName"), max_length=63)
    created = ctx.client("sagemaker").create_endpoint(EndpointName=name, EndpointConfigName=props["EndpointConfigName"])
    note = "served in-process by training/inference.py"
    if props.get("DeploymentConfig"):
        note += "; DeploymentConfig (guardrails) recorded only"
    return Created(physical_id=created["EndpointArn"], attributes={"EndpointName": name}, note=note)
