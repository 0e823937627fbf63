"""Cognito user pool authorizers on the embedded cloud's API front, from a hand-written template shaped like CDK's.

Two user pools (reviewers, and another), each with a public app client; ``GET /v1/{usecase}/review`` behind a
``COGNITO_USER_POOLS`` authorizer of the reviewers' pool, ``GET /v1/open`` without one; one echo function that
returns the proxy event it got. Users are created as an administrator does (``AdminCreateUser``, then a
permanent password) and sign in with ``USER_PASSWORD_AUTH``, as the reviewer's page does.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from local.cloud import EmbeddedCloud
from local.services.apigateway import COGNITO_USER_POOLS, ApiAuthorizer
from local.services.cognito import CognitoTokens

STACK = "Sluice-cognito-test"
PASSWORD = "Reviewer-pass-2026!"

ECHO_HANDLER = """
import json


def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({"event": event})}
"""


def _uri(function: str) -> dict[str, Any]:
    return {
        "Fn::Join": [
            "",
            [
                "arn:aws:apigateway:",
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


def _method(resource: str, *, authorizer: str | None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "HttpMethod": "GET",
        "ResourceId": {"Ref": resource},
        "RestApiId": {"Ref": "Api"},
        "AuthorizationType": COGNITO_USER_POOLS if authorizer else "NONE",
        "Integration": {"IntegrationHttpMethod": "POST", "Type": "AWS_PROXY", "Uri": _uri("EchoFunction")},
    }
    if authorizer:
        properties["AuthorizerId"] = {"Ref": authorizer}
    return {"Type": "AWS::ApiGateway::Method", "Properties": properties}


def _pool(name: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Cognito::UserPool",
        "Properties": {
            "UserPoolName": name,
            "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
            "Policies": {"PasswordPolicy": {"MinimumLength": 12, "RequireSymbols": True}},
            "AccountRecoverySetting": {"RecoveryMechanisms": [{"Name": "admin_only", "Priority": 1}]},
        },
    }


def _client(pool: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Cognito::UserPoolClient",
        "Properties": {
            "UserPoolId": {"Ref": pool},
            "GenerateSecret": False,
            "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            "IdTokenValidity": 60,
            "TokenValidityUnits": {"IdToken": "minutes"},
            "PreventUserExistenceErrors": "ENABLED",
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
        "EchoFunction": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Code": {"S3Bucket": "cdk-assets", "S3Key": "asset.echo.zip"},
                "Handler": "handler.handler",
                "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
                "Runtime": "python3.12",
                "Timeout": 10,
            },
            "DependsOn": ["FunctionRole"],
            "Metadata": {"aws:asset:path": "asset.echo", "aws:asset:property": "Code"},
        },
        "Reviewers": _pool("reviewers"),
        "ReviewersPage": _client("Reviewers"),
        "Others": _pool("others"),
        "OthersPage": _client("Others"),
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "scoring"}},
        "ReviewerAuthorizer": {
            "Type": "AWS::ApiGateway::Authorizer",
            "Properties": {
                "IdentitySource": "method.request.header.Authorization",
                "Name": "reviewers",
                "ProviderARNs": [{"Fn::GetAtt": ["Reviewers", "Arn"]}],
                "RestApiId": {"Ref": "Api"},
                "Type": COGNITO_USER_POOLS,
            },
        },
        "V1": _resource({"Fn::GetAtt": ["Api", "RootResourceId"]}, "v1"),
        "Usecase": _resource({"Ref": "V1"}, "{usecase}"),
        "Review": _resource({"Ref": "Usecase"}, "review"),
        "ReviewGet": _method("Review", authorizer="ReviewerAuthorizer"),
        "Open": _resource({"Ref": "V1"}, "open"),
        "OpenGet": _method("Open", authorizer=None),
        "Deployment": {
            "Type": "AWS::ApiGateway::Deployment",
            "Properties": {"RestApiId": {"Ref": "Api"}, "StageName": "prod"},
            "DependsOn": ["ReviewGet", "OpenGet"],
        },
    },
    "Outputs": {
        "ApiUrl": {
            "Value": {
                "Fn::Join": [
                    "",
                    ["https://", {"Ref": "Api"}, ".execute-api.", {"Ref": "AWS::Region"}, ".amazonaws.com/prod/"],
                ]
            }
        },
        "ReviewersPoolId": {"Value": {"Ref": "Reviewers"}},
        "ReviewersPoolArn": {"Value": {"Fn::GetAtt": ["Reviewers", "Arn"]}},
        "ReviewersClientId": {"Value": {"Ref": "ReviewersPage"}},
        "OthersPoolId": {"Value": {"Ref": "Others"}},
        "OthersClientId": {"Value": {"Ref": "OthersPage"}},
    },
}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCloud]:
    assembly = tmp_path_factory.mktemp("cdk.out")
    (assembly / "asset.echo").mkdir()
    (assembly / "asset.echo" / "handler.py").write_text(ECHO_HANDLER)
    template_file = assembly / f"{STACK}.template.json"
    template_file.write_text(json.dumps(TEMPLATE))
    with EmbeddedCloud(template=template_file, state_dir=assembly / ".local") as running:
        yield running


def sign_in(cloud: EmbeddedCloud, pool: str, client: str, username: str) -> dict[str, str]:
    """An administrator creates ``username`` with a permanent password; the user signs in: their tokens."""
    cognito = cloud.client("cognito-idp")
    pool_id, client_id = cloud.outputs[pool], cloud.outputs[client]
    cognito.admin_create_user(UserPoolId=pool_id, Username=username, TemporaryPassword="Temporary-pass-1!")
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
    answer = cognito.initiate_auth(
        AuthFlow="USER_PASSWORD_AUTH", ClientId=client_id, AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD}
    )
    return dict(answer["AuthenticationResult"])


@pytest.fixture(scope="module")
def ann(cloud: EmbeddedCloud) -> dict[str, str]:
    return sign_in(cloud, "ReviewersPoolId", "ReviewersClientId", "ann")


def get(url: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": token} if token is not None else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def review_url(cloud: EmbeddedCloud) -> str:
    return cloud.outputs["ApiUrl"] + "v1/churn/review"


def test_a_reviewers_id_token_reaches_the_function_with_its_claims(cloud: EmbeddedCloud, ann: dict[str, str]) -> None:
    # When ann calls the protected route with her ID token
    status, body = get(review_url(cloud), ann["IdToken"])
    # Then the function ran, with the token's claims where API Gateway's Cognito authorizer puts them
    assert status == 200
    claims = body["event"]["requestContext"]["authorizer"]["claims"]
    assert claims["cognito:username"] == "ann"
    assert claims["token_use"] == "id"
    assert claims["aud"] == cloud.outputs["ReviewersClientId"]
    assert claims["iss"].endswith("/" + cloud.outputs["ReviewersPoolId"])
    assert all(isinstance(value, str) for value in claims.values())


def test_without_a_token_or_with_a_bad_one_the_answer_is_401(cloud: EmbeddedCloud, ann: dict[str, str]) -> None:
    header, payload, signature = ann["IdToken"].split(".")
    forged_signature = ("A" if signature[0] != "A" else "B") + signature[1:]
    # When the route is called without a token, with garbage, with a forged signature, or with the access token
    answers = [
        get(review_url(cloud)),
        get(review_url(cloud), "not-a-token"),
        get(review_url(cloud), f"{header}.{payload}.{forged_signature}"),
        get(review_url(cloud), ann["AccessToken"]),
        get(review_url(cloud), "Bearer " + ann["IdToken"]),
    ]
    # Then API Gateway's 401 answers each
    assert answers == [(401, {"message": "Unauthorized"})] * len(answers)


def test_a_token_of_another_pool_is_refused(cloud: EmbeddedCloud) -> None:
    # Given a user of a pool that the authorizer does not name, signed in with that pool's client
    other = sign_in(cloud, "OthersPoolId", "OthersClientId", "mallory")
    # When they call the protected route with their valid ID token
    status, body = get(review_url(cloud), other["IdToken"])
    # Then it is refused, while an unprotected route answers anyone
    assert (status, body) == (401, {"message": "Unauthorized"})
    open_status, open_body = get(cloud.outputs["ApiUrl"] + "v1/open")
    assert open_status == 200
    assert "authorizer" not in open_body["event"]["requestContext"]


def test_an_expired_token_or_one_of_a_deleted_client_is_refused(cloud: EmbeddedCloud) -> None:
    # Given bob's ID token and the reviewers' authorizer as deployed
    bob = sign_in(cloud, "ReviewersPoolId", "ReviewersClientId", "bob")
    authorizer = ApiAuthorizer(
        authorizer_id="a1",
        name="reviewers",
        type=COGNITO_USER_POOLS,
        provider_arns=(cloud.outputs["ReviewersPoolArn"],),
    )
    now = CognitoTokens(endpoint_url=cloud.endpoint_url, client=cloud.client)
    two_hours_on = CognitoTokens(endpoint_url=cloud.endpoint_url, client=cloud.client, clock=lambda: time.time() + 7200)
    assert now.claims(authorizer, bob["IdToken"]) is not None
    # When the clock is past the token's expiry (an hour), the token is refused
    assert two_hours_on.claims(authorizer, bob["IdToken"]) is None
    # When a second client of the pool signs carol in, her token is accepted until that client is deleted
    cognito = cloud.client("cognito-idp")
    pool_id = cloud.outputs["ReviewersPoolId"]
    spare = cognito.create_user_pool_client(
        UserPoolId=pool_id, ClientName="spare", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    cognito.admin_create_user(UserPoolId=pool_id, Username="carol", TemporaryPassword="Temporary-pass-1!")
    cognito.admin_set_user_password(UserPoolId=pool_id, Username="carol", Password=PASSWORD, Permanent=True)
    carol = cognito.initiate_auth(
        AuthFlow="USER_PASSWORD_AUTH", ClientId=spare, AuthParameters={"USERNAME": "carol", "PASSWORD": PASSWORD}
    )["AuthenticationResult"]["IdToken"]
    assert get(review_url(cloud), carol)[0] == 200
    cognito.delete_user_pool_client(UserPoolId=pool_id, ClientId=spare)
    assert get(review_url(cloud), carol) == (401, {"message": "Unauthorized"})


def test_the_deployment_reports_the_cognito_resources_as_emulated(cloud: EmbeddedCloud) -> None:
    deployment = json.loads(cloud.deployment_file.read_text())
    treatments = {r["type"]: r["treatment"] for r in deployment["resources"]}
    assert treatments["AWS::Cognito::UserPool"] == "emulated"
    assert treatments["AWS::Cognito::UserPoolClient"] == "emulated"
    assert treatments["AWS::ApiGateway::Authorizer"] == "emulated"
