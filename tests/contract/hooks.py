"""Schemathesis hooks for tests/contract/run.

- A cash deposit without a `reference` carries an Idempotency-Key, as the document says it must
  (a rule between the body and a header, which an OpenAPI schema cannot state).
- In the stateful phase every request gets an Idempotency-Key of its own: a scenario there is a
  client making new things and reading them back, and a key the generator happened to reuse
  turns a create into the replay of an earlier one (its answer, as the contract says, naming
  what was made then, perhaps deleted since), which the stateful checks report as "created
  resource not found". Replays are fuzzed in the other phases and tested in tests/api.
"""

import uuid

import schemathesis


def _stateful(case):
    meta = getattr(case, "meta", None)
    phase = getattr(meta, "phase", None)
    return getattr(phase, "name", None) == "stateful"


@schemathesis.hook
def before_call(context, case, **kwargs):
    if _stateful(case) and case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    if case.operation.method.upper() != "POST" or not case.operation.path.endswith("/deposits"):
        return
    body = case.body if isinstance(case.body, dict) else None
    headers = case.headers if case.headers is not None else {}
    if body is not None and body.get("reference") is None and "Idempotency-Key" not in headers:
        headers["Idempotency-Key"] = str(uuid.uuid4())
        case.headers = headers
