"""Bearer API keys: hashed at rest, scoped, owned by a merchant or a distributor."""

import hashlib
import time

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from coupons.models import ApiKey
from coupons.selectors import Owner

KEY_PREFIX_LENGTH = 12


def api_key_hash(token: str) -> str:
    # Keys are long random tokens, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(token.encode()).hexdigest()


# Keys checked recently in this process, by the hash of their token: (when, key). Only valid keys are
# kept; an unknown or revoked token is looked up every time.
_checked: dict[str, tuple[float, ApiKey]] = {}
_CHECKED_MAX = 10_000


def api_key_find(token: str) -> ApiKey | None:
    """The live key of a token: None when it is unknown, revoked (seen within API_KEY_CACHE_SECONDS) or expired."""
    key = _api_key_checked(token)
    if key is None or key.expired(timezone.now()):
        return None  # a remembered key is checked against its expiry on every use, so it ends on time
    return key


def api_key_forget(key_id: int) -> None:
    """Drop a key from this process's memory (a revocation here is felt at once, elsewhere within the period)."""
    for digest, (_, key) in list(_checked.items()):
        if key.pk == key_id:
            _checked.pop(digest, None)


def _api_key_checked(token: str) -> ApiKey | None:
    if not token or len(token) > 200 or "\x00" in token:
        return None
    digest = api_key_hash(token)
    hit = _checked.get(digest)
    if hit is not None and time.monotonic() - hit[0] < settings.API_KEY_CACHE_SECONDS:
        return hit[1]
    key = (
        ApiKey.objects.select_related("merchant", "distributor")
        .filter(prefix=token[:KEY_PREFIX_LENGTH], revoked_at__isnull=True)
        .first()
    )
    if key is None or key.hashed_key != digest:
        _checked.pop(digest, None)
        return None
    if settings.API_KEY_CACHE_SECONDS > 0:
        if len(_checked) >= _CHECKED_MAX:
            _checked.clear()
        _checked[digest] = (time.monotonic(), key)
    return key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>`; request.auth is the ApiKey, request.user is None."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <api key>'.")
        key = api_key_find(token.strip())
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired API key.")
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            # At most once a minute: no write per call (the remembered key carries the time too).
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
        return (None, key)

    def authenticate_header(self, request):
        return self.keyword


def request_owner(request) -> Owner:
    key: ApiKey = request.auth
    return Owner(merchant_id=key.merchant_id, distributor_id=key.distributor_id)


class HasApiKey(permissions.BasePermission):
    """A valid key, carrying the view's `required_scope` when it names one."""

    message = "This API key lacks the scope this endpoint needs."

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, ApiKey):
            raise exceptions.NotAuthenticated()
        if request.method == "OPTIONS":
            return True  # it describes the endpoint (methods, media types), nothing of anyone's data
        method = "GET" if request.method == "HEAD" else request.method
        scope = getattr(view, "required_scope", None)
        if isinstance(scope, dict):
            if method not in scope and "*" not in scope:
                # A handler the map forgot is refused; a method without a handler goes on to its 405.
                return not hasattr(view, method.lower())
            scope = scope.get(method, scope.get("*"))
        if scope is None:
            return True
        alternatives = (scope,) if isinstance(scope, str) else scope
        return any(name in (request.auth.scopes or []) for name in alternatives)
