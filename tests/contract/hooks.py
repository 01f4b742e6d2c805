"""Schemathesis hooks for tests/contract/run: a cash deposit without a `reference` carries an
Idempotency-Key, as the document says it must (a rule between the body and a header, which an
OpenAPI schema cannot state)."""

import uuid

import schemathesis


@schemathesis.hook
def before_call(context, case, **kwargs):
    if case.operation.method.upper() != "POST" or not case.operation.path.endswith("/deposits"):
        return
    body = case.body if isinstance(case.body, dict) else None
    headers = case.headers if case.headers is not None else {}
    if body is not None and body.get("reference") is None and "Idempotency-Key" not in headers:
        headers["Idempotency-Key"] = str(uuid.uuid4())
        case.headers = headers
