"""The one exception tree of the sandbox, rendered as the documented error envelope.

Every non-2xx answer the sandbox gives is one of these, turned into
``{"error": {"code", "message", "details"}}`` by :func:`envelope`. Pure Python: the
Flask handler that renders them lives in ``sandbox.app``.

    ApiError (500 INTERNAL_ERROR)
    ├── MalformedJson            400 MALFORMED_JSON
    ├── MalformedRequest         400 MALFORMED_REQUEST     (not HTTP/1.1 the server can read)
    ├── InvalidSandboxHeader     400 INVALID_SANDBOX_HEADER (X-Sandbox-Response)
    ├── InvalidApiKey            401 INVALID_API_KEY
    ├── InvalidAdminToken        401 INVALID_ADMIN_TOKEN   (/_sandbox/* only)
    ├── InsufficientPermissions  403 INSUFFICIENT_PERMISSIONS
    ├── NotFound                 404
    │   ├── CustomerNotFound     404 CUSTOMER_NOT_FOUND
    │   ├── EndpointNotFound     404 ENDPOINT_NOT_FOUND
    │   ├── IndustryNotFound     404 INDUSTRY_NOT_FOUND
    │   └── FaultRuleNotFound    404 FAULT_RULE_NOT_FOUND (control API)
    ├── MethodNotAllowed         405 METHOD_NOT_ALLOWED
    ├── PayloadTooLarge          413 PAYLOAD_TOO_LARGE
    ├── UnsupportedMediaType     415 UNSUPPORTED_MEDIA_TYPE
    ├── ValidationFailed         422 VALIDATION_ERROR
    ├── RateLimitExceeded        429 RATE_LIMIT_EXCEEDED
    ├── InternalError            500 INTERNAL_ERROR
    └── ServiceUnavailable       503 SERVICE_UNAVAILABLE
        └── StoreUnavailable     503 SERVICE_UNAVAILABLE   (shared store unreachable)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ApiError(Exception):
    status: int = 500
    code: str = "INTERNAL_ERROR"
    default_message: str = "An internal error occurred."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details
        self.headers = dict(headers or {})
        super().__init__(self.message)


class MalformedJson(ApiError):
    status = 400
    code = "MALFORMED_JSON"
    default_message = "Request body is not valid JSON."


class MalformedRequest(ApiError):
    """What the HTTP server refuses before any app sees it (``sandbox.http11``): bytes
    that are not an HTTP/1.1 request, a head over its limits, ``CONNECT``."""

    status = 400
    code = "MALFORMED_REQUEST"
    default_message = "The request is not valid HTTP/1.1."


class InvalidSandboxHeader(ApiError):
    """A sandbox request header (``X-Sandbox-Response``) the sandbox cannot read."""

    status = 400
    code = "INVALID_SANDBOX_HEADER"

    def __init__(self, header: str, problem: str) -> None:
        super().__init__(problem, details={"header": header})


class InvalidApiKey(ApiError):
    status = 401
    code = "INVALID_API_KEY"
    default_message = "Missing or invalid API key. Send it in the X-API-Key header."


class InvalidAdminToken(ApiError):
    status = 401
    code = "INVALID_ADMIN_TOKEN"
    default_message = (
        "This sandbox requires 'Authorization: Bearer <admin token>' on its control API."
    )


class InsufficientPermissions(ApiError):
    status = 403
    code = "INSUFFICIENT_PERMISSIONS"
    default_message = "This API key lacks the permission this endpoint requires."


class NotFound(ApiError):
    status = 404
    code = "ENDPOINT_NOT_FOUND"
    default_message = "Not found."


class CustomerNotFound(NotFound):
    code = "CUSTOMER_NOT_FOUND"

    def __init__(self, customer_id: str) -> None:
        super().__init__(
            f"Customer '{customer_id}' not found.", details={"customer_id": customer_id}
        )


class EndpointNotFound(NotFound):
    code = "ENDPOINT_NOT_FOUND"

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"No endpoint {method} {path}.", details={"method": method, "path": path})


class IndustryNotFound(NotFound):
    code = "INDUSTRY_NOT_FOUND"

    def __init__(self, industry: str, supported: Iterable[str]) -> None:
        super().__init__(
            f"No benchmarks for industry '{industry}'.",
            details={"industry": industry, "supported": sorted(supported)},
        )


class FaultRuleNotFound(NotFound):
    code = "FAULT_RULE_NOT_FOUND"

    def __init__(self, rule_id: str) -> None:
        super().__init__(f"No fault rule '{rule_id}'.", details={"id": rule_id})


class MethodNotAllowed(ApiError):
    status = 405
    code = "METHOD_NOT_ALLOWED"

    def __init__(self, method: str, path: str, allowed: Iterable[str]) -> None:
        allow = sorted(set(allowed))
        super().__init__(
            f"Method {method} is not allowed on {path}. Allowed: {', '.join(allow)}.",
            details={"allowed": allow},
            headers={"Allow": ", ".join(allow)},
        )


class PayloadTooLarge(ApiError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            f"Request body exceeds the limit of {limit_bytes} bytes.",
            details={"limit_bytes": limit_bytes},
        )


class UnsupportedMediaType(ApiError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"

    def __init__(self, content_type: str | None) -> None:
        super().__init__(
            "Request body must be sent with Content-Type: application/json.",
            details={"content_type": content_type or None},
        )


class ValidationFailed(ApiError):
    status = 422
    code = "VALIDATION_ERROR"

    def __init__(self, errors: list[dict[str, str]], message: str | None = None) -> None:
        first = errors[0] if errors else {"path": "", "message": "invalid"}
        summary = message or (
            f"Request body failed validation: {first['message']}"
            f" (at '{first['path'] or '/'}')"
            + (f" and {len(errors) - 1} more problem(s)." if len(errors) > 1 else ".")
        )
        super().__init__(summary, details={"errors": errors})


class RateLimitExceeded(ApiError):
    status = 429
    code = "RATE_LIMIT_EXCEEDED"

    def __init__(self, retry_after: int, headers: dict[str, str] | None = None) -> None:
        merged = {**(headers or {}), "Retry-After": str(retry_after)}
        super().__init__(
            f"Rate limit exceeded. Retry after {retry_after} seconds.",
            details={"retry_after_seconds": retry_after},
            headers=merged,
        )


class InternalError(ApiError):
    status = 500
    code = "INTERNAL_ERROR"


class ServiceUnavailable(ApiError):
    status = 503
    code = "SERVICE_UNAVAILABLE"
    default_message = "The service is temporarily unavailable. Retry with exponential backoff."

    def __init__(self, message: str | None = None, retry_after: int = 1) -> None:
        super().__init__(
            message,
            details={"retry_after_seconds": retry_after},
            headers={"Retry-After": str(retry_after)},
        )


class StoreUnavailable(ServiceUnavailable):
    """The shared store (Redis) did not answer; raised by the store itself, so every
    caller (rate limits, faults, views, the control API) answers the same 503."""

    default_message = "The sandbox's store is unreachable. Retry after Retry-After seconds."

    def __init__(self, store: str, retry_after: int = 1) -> None:
        super().__init__(retry_after=retry_after)
        # ``store`` comes without its password (sandbox.store.outage.store_name).
        self.details = {**(self.details or {}), "store": store}


class UpstreamUnavailable(ServiceUnavailable):
    """The proxy's upstream failed (refused, timed out, reset); ``failure`` says which."""

    default_message = "The upstream platform did not answer. Retry after Retry-After seconds."

    def __init__(self, upstream: str, failure: str, reason: str, retry_after: int = 1) -> None:
        super().__init__(retry_after=retry_after)
        self.details = {
            **(self.details or {}),
            "upstream": upstream,
            "failure": failure,
            "reason": reason[:200],
        }


def envelope(error: ApiError) -> dict[str, Any]:
    """The documented body for ``error``; ``details`` only when there are any."""
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details is not None:
        body["details"] = error.details
    return {"error": body}
