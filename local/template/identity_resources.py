"""Creators for Cognito user pools and their app clients, in moto's ``cognito-idp``.

Registered into :data:`local.template.resources.CREATORS` on import (the deployer imports this module).

``AWS::Cognito::UserPool`` is created with its name, password policy, admin-only sign-up, account recovery,
username attributes and tags; ``Ref`` gives the pool id, ``Fn::GetAtt`` ``Arn``, ``ProviderName``,
``ProviderURL`` and ``UserPoolId``. ``AWS::Cognito::UserPoolClient`` is created with its name, secret
generation, explicit auth flows and token validities; ``Ref`` gives the client id, ``Fn::GetAtt`` ``ClientId``,
``Name`` and (with a secret) ``ClientSecret``. moto issues RS256 tokens for them (``InitiateAuth``) that the HTTP
front's Cognito authorizers check (:mod:`local.services.cognito`). Hosted-UI settings (OAuth flows, callback
URLs, domains), verification messages and Lambda triggers are not emulated.
"""

from __future__ import annotations

from typing import Any

from local.template.model import Resource
from local.template.resources import Created, DeployContext, creates

_POOL_PROPERTIES = (
    "Policies",
    "AdminCreateUserConfig",
    "AccountRecoverySetting",
    "UsernameAttributes",
    "AliasAttributes",
    "AutoVerifiedAttributes",
    "MfaConfiguration",
)
_CLIENT_PROPERTIES = (
    "ExplicitAuthFlows",
    "IdTokenValidity",
    "AccessTokenValidity",
    "RefreshTokenValidity",
    "TokenValidityUnits",
    "PreventUserExistenceErrors",
)


def _present(props: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: props[name] for name in names if props.get(name) is not None}


def _int_values(document: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's numbers may come as strings; the API wants integers (nested: the password policy)."""
    return {
        key: (_int_values(value) if isinstance(value, dict) else int(value) if _is_integer_text(value) else value)
        for key, value in document.items()
    }


def _is_integer_text(value: Any) -> bool:
    return isinstance(value, str) and value.isdigit()


@creates("AWS::Cognito::UserPool")
def _user_pool(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    name = ctx.name(resource, props.get("UserPoolName"), max_length=128)
    tags = props.get("UserPoolTags") or {}
    created = ctx.client("cognito-idp").create_user_pool(
        PoolName=name,
        **_int_values(_present(props, _POOL_PROPERTIES)),
        **({"UserPoolTags": {str(k): str(v) for k, v in tags.items()}} if tags else {}),
    )["UserPool"]
    pool_id, region = created["Id"], ctx.template.region
    provider = f"cognito-idp.{region}.amazonaws.com/{pool_id}"
    return Created(
        physical_id=pool_id,
        attributes={
            "Arn": created["Arn"],
            "ProviderName": provider,
            "ProviderURL": f"https://{provider}",
            "UserPoolId": pool_id,
        },
        note="ID tokens checked by the API front's Cognito authorizers",
    )


@creates("AWS::Cognito::UserPoolClient")
def _user_pool_client(ctx: DeployContext, resource: Resource, props: dict[str, Any]) -> Created:
    name = ctx.name(resource, props.get("ClientName"), max_length=128)
    generate_secret = str(props.get("GenerateSecret", False)).lower() == "true"
    created = ctx.client("cognito-idp").create_user_pool_client(
        UserPoolId=props["UserPoolId"],
        ClientName=name,
        GenerateSecret=generate_secret,
        **_int_values(_present(props, _CLIENT_PROPERTIES)),
    )["UserPoolClient"]
    client_id = created["ClientId"]
    attributes = {"ClientId": client_id, "Name": name}
    if generate_secret:
        attributes["ClientSecret"] = created["ClientSecret"]
    note = "hosted-UI OAuth settings recorded only" if props.get("AllowedOAuthFlows") else ""
    return Created(physical_id=client_id, attributes=attributes, note=note)
