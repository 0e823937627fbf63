"""The HTTP front for API Gateway REST APIs (v1): a loopback server that turns requests into proxy events.

moto stores API Gateway resources but serves no HTTP for them. :class:`ApiFront` is a threaded HTTP
server on 127.0.0.1 that serves every REST API the template declares (recorded into an
:class:`ApiRegistry` by the creators in :mod:`local.template.serving_resources`). A request to
``http://127.0.0.1:<port>/<stage>/<path>`` goes through API Gateway's steps:

1. **route** -- the resource tree (``PathPart`` / ``ParentId``) with static segments preferred over
   ``{name}`` parameters, and ``{proxy+}`` greedy parameters last; the method, else ``ANY``. No match:
   403 ``{"message": "Missing Authentication Token"}`` (as API Gateway answers);
2. **authorizer** -- a method with ``AuthorizationType`` ``COGNITO_USER_POOLS`` needs its authorizer's
   identity source header (``Authorization``) to hold an ID token of one of the authorizer's user pools,
   checked as API Gateway checks it (:mod:`local.services.cognito`: the signature against the pool's JWKS,
   the issuer, the expiry, ``token_use`` ``id``, the audience an app client of the pool); otherwise 401
   ``Unauthorized``. The token's claims reach the function in ``requestContext.authorizer.claims``;
3. **API key** -- a method with ``ApiKeyRequired`` needs an ``x-api-key`` header holding the value
   of an enabled key that is in a usage plan of this API and stage; otherwise 403 ``Forbidden``;
4. **throttling** -- a token bucket per (key, usage plan) at the plan's ``Throttle`` (``RateLimit``
   refill per second, ``BurstLimit`` capacity; the plan's per-stage ``Throttle`` wins) and one per
   (stage, resource path, method) from the stage's ``MethodSettings`` (``/*`` and ``*`` match all);
   empty: 429 ``Too Many Requests``. ``Quota`` (``Limit`` per ``DAY``/``WEEK``/``MONTH``, calendar
   periods in UTC, ``Offset`` ignored): 429 ``Limit Exceeded``;
5. **payload** -- a body over 6 MB (Lambda's synchronous limit): 413;
6. **integration** -- ``AWS_PROXY`` only: the REST v1 proxy event (``resource``, ``path``,
   ``httpMethod``, ``headers`` / ``multiValueHeaders``, ``queryStringParameters`` /
   ``multiValueQueryStringParameters``, ``pathParameters``, ``stageVariables``, ``requestContext``
   with ``requestId``, ``stage``, ``resourcePath``, ``identity.apiKey`` / ``apiKeyId`` / ``sourceIp``,
   ``requestTimeEpoch``, ``authorizer.claims``, ``body``, ``isBase64Encoded``) is run synchronously by the in-process
   :class:`local.services.lambdas.LambdaRuntime`; the proxy response (``statusCode``, ``headers``,
   ``multiValueHeaders``, ``body``, ``isBase64Encoded``) becomes the HTTP response. A handler error,
   a timeout or a malformed response: 502 ``{"message": "Internal server error"}``.

Every response carries ``x-amzn-RequestId``. Besides, ``/_sluice/...`` paths are embedded-cloud
controls that do not exist on AWS (see :class:`ControlRoute`; the SageMaker fault switch lives there).

Differences from API Gateway, on purpose or by necessity:

* One port serves every REST API; the first path segment is the stage. When two APIs have a stage
  of the same name, the first (in template order) whose routes match serves the request. There is no
  ``execute-api`` host name, custom domain, base path mapping, TLS or CORS preflight emulation.
* Only ``AWS_PROXY`` integrations run; other integration types (``MOCK``, ``HTTP``, ``AWS``) answer
  500 ``{"message": "Internal server error"}`` and are named on startup. Cognito user pool
  authorizers are enforced (no result caching: each request is checked); ``CUSTOM`` (Lambda) and
  ``AWS_IAM`` authorization are recorded but not enforced; request validators and models are not applied.
* API keys, usage plans and their keys are read from the template at deployment (their values from
  moto, where they are also created): keys or plans created through the API at run time are not seen.
* Throttling and quotas are counted in this process (exact token buckets, no account-level 10,000 rps
  limit); the 29-second integration timeout is not enforced (the function's own Timeout is reported).
* Request bodies that are not UTF-8 are passed base64-encoded (``isBase64Encoded: true``); API
  Gateway does that only for ``BinaryMediaTypes``, which are otherwise honoured as well.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatch
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from local.exceptions import LocalCloudError

logger = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES: Final = 6 * 1024 * 1024
ACCOUNT_ID: Final = "123456789012"
CONTROL_PREFIX: Final = "/_sluice/"
_FUNCTION_IN_URI = re.compile(r":lambda:path/[^/]+/functions/(?P<arn>.+?)/invocations$")
_EXECUTE_API_URL = re.compile(
    r"^https://(?P<api>[a-z0-9]+)\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(?P<rest>.*)$"
)


class ApiConfigurationError(LocalCloudError):
    """A REST API resource in the template cannot be served (unknown parent, bad integration...)."""


# -- the model, filled by the creators in local.template.serving_resources --------------------------------


@dataclass(frozen=True, kw_only=True)
class Throttle:
    rate_per_s: float
    burst: int


@dataclass(frozen=True, kw_only=True)
class Quota:
    limit: int
    period: str
    """``DAY``, ``WEEK`` or ``MONTH``."""


@dataclass(frozen=True, kw_only=True)
class ApiAuthorizer:
    """An ``AWS::ApiGateway::Authorizer``."""

    authorizer_id: str
    name: str
    type: str
    """``COGNITO_USER_POOLS`` (enforced), ``TOKEN`` / ``REQUEST`` (recorded only)."""
    provider_arns: tuple[str, ...] = ()
    """The user pools whose ID tokens it accepts."""
    identity_source: str = "method.request.header.Authorization"

    @property
    def header(self) -> str:
        """The request header holding the token (``method.request.header.<name>``)."""
        return self.identity_source.removeprefix("method.request.header.")


COGNITO_USER_POOLS: Final = "COGNITO_USER_POOLS"


@dataclass(kw_only=True)
class ApiMethod:
    http_method: str
    authorization_type: str = "NONE"
    authorizer_id: str | None = None
    api_key_required: bool = False
    integration_type: str = "AWS_PROXY"
    function_arn: str | None = None


@dataclass(kw_only=True)
class ApiResource:
    resource_id: str
    parent_id: str | None
    path_part: str
    methods: dict[str, ApiMethod] = field(default_factory=dict)


@dataclass(kw_only=True)
class ApiStage:
    name: str
    variables: dict[str, str] = field(default_factory=dict)
    method_throttles: list[tuple[str, str, Throttle]] = field(default_factory=list)
    """``(resource path pattern, http method pattern, throttle)`` from ``MethodSettings``."""


@dataclass(kw_only=True)
class RestApi:
    api_id: str
    name: str
    root_resource_id: str
    binary_media_types: list[str] = field(default_factory=list)
    resources: dict[str, ApiResource] = field(default_factory=dict)
    stages: dict[str, ApiStage] = field(default_factory=dict)
    authorizers: dict[str, ApiAuthorizer] = field(default_factory=dict)

    def path_of(self, resource_id: str) -> str:
        parts: list[str] = []
        current: str | None = resource_id
        seen: set[str] = set()
        while current is not None and current != self.root_resource_id:
            if current in seen or current not in self.resources:
                raise ApiConfigurationError(f"API {self.api_id}: resource {current} has no path to the root")
            seen.add(current)
            resource = self.resources[current]
            parts.append(resource.path_part)
            current = resource.parent_id
        return "/" + "/".join(reversed(parts))

    def routes(self) -> list[tuple[str, ApiResource]]:
        """``(resource path, resource)`` for every resource that has methods, root included."""
        return [(self.path_of(r.resource_id), r) for r in self.resources.values() if r.methods]


@dataclass(frozen=True, kw_only=True)
class ApiKey:
    key_id: str
    value: str
    name: str = ""
    enabled: bool = True


@dataclass(kw_only=True)
class UsagePlan:
    plan_id: str
    name: str = ""
    throttle: Throttle | None = None
    quota: Quota | None = None
    stages: dict[tuple[str, str], Throttle | None] = field(default_factory=dict)
    """``(api id, stage name)`` → the plan's per-stage throttle, if any."""
    key_ids: set[str] = field(default_factory=set)


@dataclass(kw_only=True)
class ApiRegistry:
    """Every REST API, key and usage plan the deployment created."""

    apis: dict[str, RestApi] = field(default_factory=dict)
    keys: dict[str, ApiKey] = field(default_factory=dict)
    usage_plans: dict[str, UsagePlan] = field(default_factory=dict)

    def api(self, api_id: str) -> RestApi:
        try:
            return self.apis[api_id]
        except KeyError:
            raise ApiConfigurationError(f"REST API {api_id!r} is not in the template") from None

    def key_by_value(self, value: str) -> ApiKey | None:
        return next((key for key in self.keys.values() if key.value == value), None)

    def unsupported_integrations(self) -> list[str]:
        return sorted(
            f"{api.name} {method.http_method} {api.path_of(resource.resource_id)} ({method.integration_type})"
            for api in self.apis.values()
            for resource in api.resources.values()
            for method in resource.methods.values()
            if method.integration_type != "AWS_PROXY" or method.function_arn is None
        )


def function_arn_from_uri(uri: str) -> str | None:
    """``arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<function arn>/invocations`` → the ARN."""
    match = _FUNCTION_IN_URI.search(uri)
    return match.group("arn") if match else None


def local_stage_url(url: str, registry: ApiRegistry, api_url: str) -> str | None:
    """An ``https://<id>.execute-api.<region>.amazonaws.com/<stage>/...`` URL of a local API → its local URL."""
    match = _EXECUTE_API_URL.match(url)
    if match is None or match.group("api") not in registry.apis:
        return None
    return f"{api_url.rstrip('/')}/{match.group('rest')}"


# -- routing ----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Route:
    api: RestApi
    stage: ApiStage
    resource: ApiResource
    resource_path: str
    method: ApiMethod
    path: str
    """The request path without the stage (what the event's ``path`` holds)."""
    path_parameters: dict[str, str]


def _match(template_path: str, path: str) -> tuple[tuple[int, ...], dict[str, str]] | None:
    """Match a request path against a resource path; returns (specificity, path parameters)."""
    pattern = [s for s in template_path.split("/") if s]
    segments = [s for s in path.split("/") if s]
    parameters: dict[str, str] = {}
    rank: list[int] = []
    for index, part in enumerate(pattern):
        if part.startswith("{") and part.endswith("+}"):
            rest = segments[index:]
            if not rest:
                return None
            parameters[part[1:-2]] = "/".join(rest)
            rank.append(0)
            return tuple(rank), parameters
        if index >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            parameters[part[1:-1]] = segments[index]
            rank.append(1)
        elif part == segments[index]:
            rank.append(2)
        else:
            return None
    if len(segments) != len(pattern):
        return None
    return (*rank, 3), parameters


def route(registry: ApiRegistry, method: str, full_path: str) -> Route | None:
    """The API, stage, resource and method serving ``method full_path`` (``/<stage>/<path>``)."""
    stage_name, _, rest = full_path.lstrip("/").partition("/")
    path = "/" + rest
    for api in registry.apis.values():
        stage = api.stages.get(stage_name)
        if stage is None:
            continue
        best: tuple[tuple[int, ...], str, ApiResource, dict[str, str]] | None = None
        for resource_path, resource in api.routes():
            matched = _match(resource_path, path)
            if matched is not None and (best is None or matched[0] > best[0]):
                best = (matched[0], resource_path, resource, matched[1])
        if best is None:
            continue
        _, resource_path, resource, parameters = best
        api_method = resource.methods.get(method) or resource.methods.get("ANY")
        if api_method is None:
            continue
        return Route(
            api=api,
            stage=stage,
            resource=resource,
            resource_path=resource_path,
            method=api_method,
            path=path,
            path_parameters=parameters,
        )
    return None


# -- throttling and quotas -------------------------------------------------------------------------


class TokenBucket:
    """``burst`` tokens, refilled at ``rate_per_s``; thread-safe."""

    def __init__(self, throttle: Throttle, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = throttle.rate_per_s
        self.capacity = float(throttle.burst)
        self.tokens = self.capacity
        self._clock = clock
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


def quota_period_start(period: str, now: datetime) -> datetime:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "DAY":
        return day
    if period == "WEEK":
        return day.fromordinal(day.toordinal() - day.weekday()).replace(tzinfo=UTC)
    return day.replace(day=1)


class Limiter:
    """Token buckets and quota counters per (key, usage plan) and per stage method."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, ...], TokenBucket] = {}
        self._quotas: dict[tuple[str, str], tuple[datetime, int]] = {}
        self._lock = threading.Lock()

    def allow(self, scope: tuple[str, ...], throttle: Throttle) -> bool:
        with self._lock:
            bucket = self._buckets.get(scope)
            if bucket is None:
                bucket = self._buckets[scope] = TokenBucket(throttle, self._clock)
        return bucket.take()

    def within_quota(self, key_id: str, plan_id: str, quota: Quota, now: datetime | None = None) -> bool:
        start = quota_period_start(quota.period, now or datetime.now(UTC))
        with self._lock:
            period, used = self._quotas.get((key_id, plan_id), (start, 0))
            if period != start:
                used = 0
            if used >= quota.limit:
                return False
            self._quotas[(key_id, plan_id)] = (start, used + 1)
            return True


# -- the HTTP front --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ApiResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _message(status: int, message: str, error_type: str | None = None) -> ApiResponse:
    headers = [("Content-Type", "application/json")]
    if error_type:
        headers.append(("x-amzn-ErrorType", error_type))
    return ApiResponse(status=status, headers=headers, body=json.dumps({"message": message}).encode())


ControlRoute = Callable[[str, str, bytes], ApiResponse | None]
"""An embedded-cloud control: ``(method, path, body)`` → a response, or None when not its path."""

Invoke = Callable[[str, Mapping[str, Any]], tuple[bool, bytes]]
"""``(function arn, event)`` → ``(function_error, payload)``, synchronously."""

TokenClaims = Callable[[ApiAuthorizer, str | None], Mapping[str, str] | None]
"""``(authorizer, the identity source's value)`` → the token's claims, or None when it is refused."""


def _refuse_every_token(_authorizer: ApiAuthorizer, _token: str | None) -> None:
    return None


@dataclass(frozen=True, kw_only=True)
class Admission:
    """What the request steps before the integration decided: the API key, the authorizer's claims, a refusal."""

    key: ApiKey | None = None
    claims: Mapping[str, str] | None = None
    refused: ApiResponse | None = None


class ApiGateway:
    """The request pipeline (routing, keys, throttling, proxy integration), independent of HTTP serving."""

    def __init__(
        self,
        registry: ApiRegistry,
        invoke: Invoke,
        *,
        limiter: Limiter | None = None,
        token_claims: TokenClaims | None = None,
    ) -> None:
        """``token_claims`` checks Cognito tokens (:class:`local.services.cognito.CognitoTokens`); without it,
        every request to a Cognito-authorized method is refused."""
        self.registry = registry
        self._invoke = invoke
        self._token_claims = token_claims or _refuse_every_token
        self.limiter = limiter or Limiter()
        self.controls: list[ControlRoute] = []

    def reset_limits(self) -> None:
        """Refill every token bucket and zero every quota (tests and demos; no such call on AWS)."""
        self.limiter = Limiter()

    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> ApiResponse:
        split = urlsplit(target)
        request = Request(
            method=method,
            path=split.path,
            query=split.query,
            headers=headers,
            body=body,
            source_ip=source_ip,
            request_id=str(uuid.uuid4()),
        )
        response = self._handle(request)
        response.headers.append(("x-amzn-RequestId", request.request_id))
        return response

    def _handle(self, request: Request) -> ApiResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return self._control(request)
        found = route(self.registry, request.method, request.path)
        if found is None:
            return _message(403, "Missing Authentication Token", "MissingAuthenticationTokenException")
        admission = self._admit(found, request)
        return admission.refused or self._integrate(found, request, admission)

    def _control(self, request: Request) -> ApiResponse:
        for control in self.controls:
            answered = control(request.method, request.path, request.body)
            if answered is not None:
                return answered
        return _message(404, f"no embedded-cloud control at {request.path}")

    def _admit(self, found: Route, request: Request) -> Admission:
        """Authorizer, API key, usage-plan throttle and quota, stage throttle, payload size."""
        claims: Mapping[str, str] | None = None
        if found.method.authorization_type == COGNITO_USER_POOLS:
            claims = self._claims(found, request)
            if claims is None:
                return Admission(refused=_message(401, "Unauthorized", "UnauthorizedException"))
        key: ApiKey | None = None
        if found.method.api_key_required:
            key, plans = self._authorized_key(found, request.headers)
            if key is None:
                return Admission(claims=claims, refused=_message(403, "Forbidden", "ForbiddenException"))
            if (refused := self._within_plans(found, key, plans)) is not None:
                return Admission(key=key, claims=claims, refused=refused)
        if (refused := self._within_stage_throttle(found, request.method)) is not None:
            return Admission(key=key, claims=claims, refused=refused)
        if len(request.body) > MAX_PAYLOAD_BYTES:
            return Admission(
                key=key, claims=claims, refused=_message(413, "Request Too Long", "RequestTooLongException")
            )
        return Admission(key=key, claims=claims)

    def _claims(self, found: Route, request: Request) -> Mapping[str, str] | None:
        authorizer = found.api.authorizers.get(found.method.authorizer_id or "")
        if authorizer is None or authorizer.type != COGNITO_USER_POOLS:
            logger.warning("%s %s: no Cognito authorizer recorded for the method", request.method, request.path)
            return None
        return self._token_claims(authorizer, _header(request.headers, authorizer.header.lower()))

    def _within_plans(self, found: Route, key: ApiKey, plans: list[UsagePlan]) -> ApiResponse | None:
        for plan in plans:
            throttle = plan.stages.get((found.api.api_id, found.stage.name)) or plan.throttle
            if throttle is not None and not self.limiter.allow(("plan", key.key_id, plan.plan_id), throttle):
                return _message(429, "Too Many Requests", "TooManyRequestsException")
            if plan.quota is not None and not self.limiter.within_quota(key.key_id, plan.plan_id, plan.quota):
                return _message(429, "Limit Exceeded", "LimitExceededException")
        return None

    def _within_stage_throttle(self, found: Route, method: str) -> ApiResponse | None:
        for resource_pattern, method_pattern, throttle in found.stage.method_throttles:
            if fnmatch(found.resource_path, resource_pattern.replace("~1", "/")) and fnmatch(method, method_pattern):
                scope = ("stage", found.api.api_id, found.stage.name, found.resource_path, method)
                if not self.limiter.allow(scope, throttle):
                    return _message(429, "Too Many Requests", "TooManyRequestsException")
                return None
        return None

    def _integrate(self, found: Route, request: Request, admission: Admission) -> ApiResponse:
        where = f"{request.method} {request.path}"
        if found.method.integration_type != "AWS_PROXY" or found.method.function_arn is None:
            logger.warning("%s: %s integrations are not emulated", where, found.method.integration_type)
            return _message(500, "Internal server error", "InternalServerErrorException")
        function_error, payload = self._invoke(
            found.method.function_arn, proxy_event(found, request, admission.key, claims=admission.claims)
        )
        if function_error:
            logger.warning("%s: the function failed: %s", where, payload[:500].decode(errors="replace"))
            return _message(502, "Internal server error", "InternalServerErrorException")
        try:
            return _proxy_response(json.loads(payload))
        except (ValueError, TypeError, KeyError) as exc:
            logger.warning("%s: malformed Lambda proxy response (%s)", where, exc)
            return _message(502, "Internal server error", "InternalServerErrorException")

    def _authorized_key(self, found: Route, headers: list[tuple[str, str]]) -> tuple[ApiKey | None, list[UsagePlan]]:
        value = _header(headers, "x-api-key")
        key = self.registry.key_by_value(value) if value else None
        if key is None or not key.enabled:
            return None, []
        stage = (found.api.api_id, found.stage.name)
        plans = [p for p in self.registry.usage_plans.values() if key.key_id in p.key_ids and stage in p.stages]
        return (key, plans) if plans else (None, [])


@dataclass(frozen=True, kw_only=True)
class Request:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    request_id: str


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


def _event_body(request: Request, binary_media_types: list[str]) -> tuple[str | None, bool]:
    if not request.body:
        return None, False
    content_type = (_header(request.headers, "content-type") or "").split(";")[0].strip()
    if not any(fnmatch(content_type, t) for t in binary_media_types):
        try:
            return request.body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(request.body).decode(), True


def proxy_event(
    found: Route, request: Request, key: ApiKey | None, *, claims: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The REST API (v1) Lambda proxy integration event (``claims``: a Cognito authorizer's, as strings)."""
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        multi_headers.setdefault(name, []).append(value)
    multi_query: dict[str, list[str]] = {}
    for name, value in parse_qsl(request.query, keep_blank_values=True):
        multi_query.setdefault(name, []).append(value)
    body, encoded = _event_body(request, found.api.binary_media_types)
    now = time.time()
    return {
        "resource": found.resource_path,
        "path": found.path,
        "httpMethod": request.method,
        "headers": {name: values[-1] for name, values in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": found.path_parameters or None,
        "stageVariables": dict(found.stage.variables) or None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": found.api.api_id,
            "resourceId": found.resource.resource_id,
            "resourcePath": found.resource_path,
            "httpMethod": request.method,
            "path": f"/{found.stage.name}{found.path}",
            "stage": found.stage.name,
            "requestId": request.request_id,
            "extendedRequestId": request.request_id,
            "protocol": "HTTP/1.1",
            "domainName": _header(request.headers, "host") or "127.0.0.1",
            "requestTime": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now * 1000),
            "identity": {
                "apiKey": key.value if key else None,
                "apiKeyId": key.key_id if key else None,
                "sourceIp": request.source_ip,
                "userAgent": _header(request.headers, "user-agent"),
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "user": None,
                "userArn": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
            },
            **({"authorizer": {"claims": dict(claims)}} if claims is not None else {}),
        },
        "body": body,
        "isBase64Encoded": encoded,
    }


def _proxy_response(document: Any) -> ApiResponse:
    """A Lambda proxy response → HTTP; raises ValueError/TypeError/KeyError when malformed (→ 502)."""
    if not isinstance(document, dict):
        raise TypeError("the proxy response is not a JSON object")
    status = int(document.get("statusCode", 200))
    if not 100 <= status <= 599:
        raise ValueError(f"statusCode {status}")
    headers: list[tuple[str, str]] = []
    single = document.get("headers") or {}
    multi = document.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise TypeError("headers must be objects")
    for name, values in multi.items():
        if not isinstance(values, list):
            raise TypeError(f"multiValueHeaders[{name!r}] is not a list")
        headers.extend((str(name), str(v)) for v in values)
    multi_names = {name.lower() for name in multi}
    headers.extend((str(n), str(v)) for n, v in single.items() if n.lower() not in multi_names)
    body = document.get("body")
    if body is None:
        raw = b""
    elif not isinstance(body, str):
        raise TypeError("body must be a string")
    elif document.get("isBase64Encoded"):
        raw = base64.b64decode(body, validate=True)
    else:
        raw = body.encode()
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return ApiResponse(status=status, headers=headers, body=raw)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            response = self.server.gateway.handle(
                self.command, self.path, list(self.headers.items()), body, self.client_address[0]
            )
        except Exception:  # the front must answer something, as API Gateway would
            logger.exception("the API front failed on %s %s", self.command, self.path)
            response = _message(500, "Internal server error")
            response.headers.append(("x-amzn-RequestId", str(uuid.uuid4())))
        self.send_response(response.status, HTTPStatus(response.status).phrase if response.status in _PHRASES else "")
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve  # noqa: N815 - http.server's names

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("api %s - " + format, self.client_address[0], *args)


_PHRASES = {s.value for s in HTTPStatus}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    gateway: ApiGateway


class ApiFront:
    """Serves :class:`ApiGateway` on ``127.0.0.1:<port>`` (0 picks a free port) in a background thread."""

    def __init__(self, gateway: ApiGateway, *, port: int = 0) -> None:
        self.gateway = gateway
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise LocalCloudError("the API front is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self._server is not None:
            return
        server = _Server(("127.0.0.1", self._requested_port), _Handler)
        server.gateway = self.gateway
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="local-api-front", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
