"""Schemathesis hooks for tests/contract/run.

- A cash deposit without a `reference` carries an Idempotency-Key, as the document says it must
  (a rule between the body and a header, which an OpenAPI schema cannot state).
- In the stateful phase every request gets an Idempotency-Key of its own: a scenario there is a
  client making new things and reading them back, and a key the generator happened to reuse
  turns a create into the replay of an earlier one (its answer, as the contract says, naming
  what was made then, perhaps deleted since), which the stateful checks report as "created
  resource not found". Replays are fuzzed in the other phases and tested in tests/api.
- Generated valid text keeps out the ranges of invisible characters beyond the Basic
  Multilingual Plane that remit refuses in free text (the Egyptian hieroglyph format controls
  U+13430-U+1343F, the shorthand format controls U+1BCA0-U+1BCA3, the musical formatting
  controls U+1D173-U+1D17A, the tag characters and the code points kept ignorable
  U+E0000-U+E00FF and U+E01F0-U+E0FFF; src/domain/text.rs, `invisible`, the same list):
  the document states them in words beside
  each text's pattern, which keeps to that plane (a regular expression naming them is read
  differently by ECMAScript, Python and Rust), so a schema-valid generator may produce them.
  Only requests generated to be valid are cleaned; invalid ones are sent as generated.
"""

import uuid

import schemathesis


_BEYOND_PATTERN = [
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE00FF),
    (0xE01F0, 0xE0FFF),
]


def _refused_beyond_pattern(c):
    code = ord(c)
    return any(low <= code <= high for low, high in _BEYOND_PATTERN)


def _cleaned(value):
    if isinstance(value, str):
        return "".join(c for c in value if not _refused_beyond_pattern(c))
    if isinstance(value, list):
        return [_cleaned(v) for v in value]
    if isinstance(value, dict):
        return {k: _cleaned(v) for k, v in value.items()}
    return value


def _positive(case):
    meta = getattr(case, "meta", None)
    generation = getattr(meta, "generation", None)
    mode = getattr(generation, "mode", None)
    # The stateful phase and the positive mode generate valid requests.
    return mode is None or "negative" not in str(mode).lower()


def _stateful(case):
    meta = getattr(case, "meta", None)
    phase = getattr(meta, "phase", None)
    return getattr(phase, "name", None) == "stateful"


@schemathesis.hook
def before_call(context, case, **kwargs):
    if _positive(case) and isinstance(case.body, (dict, list)):
        case.body = _cleaned(case.body)
    if _stateful(case) and case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    if case.operation.method.upper() != "POST" or not case.operation.path.endswith("/deposits"):
        return
    body = case.body if isinstance(case.body, dict) else None
    headers = case.headers if case.headers is not None else {}
    if body is not None and body.get("reference") is None and "Idempotency-Key" not in headers:
        headers["Idempotency-Key"] = str(uuid.uuid4())
        case.headers = headers
