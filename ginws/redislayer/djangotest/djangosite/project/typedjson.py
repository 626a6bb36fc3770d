"""Type-faithful JSON for channel layer messages, shared with the Go helper
(ginws.dev/ginws/redislayer/djangotest, typed.go).

JSON already tells bool, null, strings, lists and maps apart, and Python's json module writes every
float with a '.' or an exponent, so int and float stay distinct. Only bytes need a wrapper: they
travel as {"__bytes__": "<standard base64>"}. NaN and infinities are refused (JSON has no such
numbers)."""

import base64
import json

BYTES_KEY = "__bytes__"


def to_typed(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {BYTES_KEY: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {str(k): to_typed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_typed(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError("cannot encode %s as typed JSON" % type(value).__name__)


def from_typed(value):
    if isinstance(value, dict):
        if len(value) == 1 and BYTES_KEY in value and isinstance(value[BYTES_KEY], str):
            return base64.b64decode(value[BYTES_KEY], validate=True)
        return {k: from_typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_typed(v) for v in value]
    return value


def dumps(value):
    return json.dumps(to_typed(value), allow_nan=False, separators=(",", ":"))
