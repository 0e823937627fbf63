"""Cognito user pool authorizers of the HTTP front: ID tokens checked as API Gateway checks them.

moto's Cognito (``InitiateAuth``, ``AdminInitiateAuth``...) issues RS256 tokens signed with its one key and
serves that key's JWKS at ``<moto>/<pool id>/.well-known/jwks.json``. :class:`CognitoTokens` accepts the value
of an authorizer's identity source (the ``Authorization`` header: the raw token, no ``Bearer`` prefix, as API
Gateway expects for a Cognito authorizer) when, for one of the authorizer's user pools:

* the signature verifies against the pool's JWKS (``RS256`` only; fetched once per pool);
* ``iss`` is ``https://cognito-idp.<region>.amazonaws.com/<pool id>`` (region and id from the pool's ARN);
* ``exp`` is in the future;
* ``token_use`` is ``id`` (the methods declare no OAuth scopes, so an access token is refused, as on AWS);
* ``aud`` is an app client of the pool now (``ListUserPoolClients``: a client deleted since is refused).

The claims come back as strings (API Gateway passes every claim as a string in
``requestContext.authorizer.claims``; numbers are their decimal text). Differences from AWS: no result
caching, no ``Bearer``-prefix leniency, and the expiry's clock skew is zero.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Final

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from local.services.apigateway import ApiAuthorizer

logger = logging.getLogger(__name__)

ALGORITHMS: Final = ["RS256"]
ID_TOKEN: Final = "id"  # noqa: S105 - the token_use claim of an ID token, not a secret
_POOL_ARN_PARTS: Final = 6


def pool_of(arn: str) -> tuple[str, str] | None:
    """``arn:aws:cognito-idp:<region>:<account>:userpool/<pool id>`` → ``(region, pool id)``."""
    parts = arn.split(":")
    if len(parts) != _POOL_ARN_PARTS or parts[2] != "cognito-idp" or not parts[5].startswith("userpool/"):
        return None
    return parts[3], parts[5].removeprefix("userpool/")


def issuer(region: str, pool_id: str) -> str:
    return f"https://cognito-idp.{region}.amazonaws.com/{pool_id}"


class CognitoTokens:
    """Checks ID tokens of the moto server's user pools (see the module)."""

    def __init__(
        self, *, endpoint_url: str, client: Callable[[str], Any], clock: Callable[[], float] = time.time
    ) -> None:
        """``endpoint_url``: the moto server; ``client("cognito-idp")``: a boto3 client pointed at it."""
        self._endpoint_url = endpoint_url.rstrip("/")
        self._client = client
        self._clock = clock
        self._key_sets: dict[str, KeySet] = {}
        self._lock = threading.Lock()

    def claims(self, authorizer: ApiAuthorizer, token: str | None) -> Mapping[str, str] | None:
        """The token's claims (as strings) when one of ``authorizer``'s pools issued it; None otherwise."""
        if not token:
            return None
        for arn in authorizer.provider_arns:
            pool = pool_of(arn)
            if pool is None:
                continue
            claims = self._verified(token, *pool)
            if claims is not None:
                return {name: value if isinstance(value, str) else json.dumps(value) for name, value in claims.items()}
        return None

    def _verified(self, token: str, region: str, pool_id: str) -> dict[str, Any] | None:
        try:
            decoded = jwt.decode(token, self._key_set(pool_id), algorithms=ALGORITHMS)
            jwt.JWTClaimsRegistry(
                now=int(self._clock()),
                leeway=0,
                iss={"essential": True, "value": issuer(region, pool_id)},
                exp={"essential": True},
                token_use={"essential": True, "value": ID_TOKEN},
                aud={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            logger.debug("token refused for pool %s: %s", pool_id, exc)
            return None
        audience = decoded.claims["aud"]
        if not isinstance(audience, str) or audience not in self._clients(pool_id):
            logger.debug("token refused for pool %s: audience %r is no client of the pool", pool_id, audience)
            return None
        return dict(decoded.claims)

    def _key_set(self, pool_id: str) -> KeySet:
        with self._lock:
            key_set = self._key_sets.get(pool_id)
        if key_set is None:
            url = f"{self._endpoint_url}/{pool_id}/.well-known/jwks.json"
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the local moto server's URL
                key_set = KeySet.import_key_set(json.loads(response.read()))
            with self._lock:
                self._key_sets[pool_id] = key_set
        return key_set

    def _clients(self, pool_id: str) -> set[str]:
        cognito = self._client("cognito-idp")
        clients: set[str] = set()
        arguments: dict[str, Any] = {"UserPoolId": pool_id, "MaxResults": 60}
        while True:
            try:
                page = cognito.list_user_pool_clients(**arguments)
            except cognito.exceptions.ResourceNotFoundException:
                return set()
            clients.update(c["ClientId"] for c in page.get("UserPoolClients", []))
            if not page.get("NextToken"):
                return clients
            arguments["NextToken"] = page["NextToken"]
