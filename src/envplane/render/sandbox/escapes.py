"""Escaping filters for other languages embedded in a config: JSON literals, JS strings."""

from __future__ import annotations

import json
from typing import Any


def json_literal(value: Any) -> str:
    """`{{ x | json }}`: the value as a JSON literal (a text becomes a quoted JSON string)."""
    return json.dumps(value, ensure_ascii=False)


_JS_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"}


def js_string(value: Any) -> str:
    """`{{ x | js }}`: the value as a JavaScript string literal, quotes included.

    JSON-string escaping (valid JavaScript), ASCII only, so U+2028/U+2029 cannot end a line of
    old JavaScript, and `< > & '` escaped too, so the literal is safe even inside a `<script>`
    element or next to single quotes. `JSON.parse` and any JavaScript engine read back the
    exact value."""
    literal = json.dumps(str(value), ensure_ascii=True)
    return "".join(_JS_UNSAFE.get(c, c) for c in literal)
