"""Values are data: a placeholder's value fills a scalar; it never adds, removes or renames a
key, a ConfigMap or a document.

A config template is rendered by `render.sandbox` with a random token (`qv…n<i>q`, letters and
digits) in place of each placeholder's output, and that text is parsed as YAML. The parsed
documents are the structure: every key, every ConfigMap and every document comes from the
template alone, because a token is one plain word wherever it sits (plain, quoted or block
scalar, flow or block context, a comment). Then `fill` puts each slot's value, verbatim, into
the strings that hold its token. No value is ever parsed as YAML, so quotes, backslashes,
newlines, `: |`, `---`, `{{`, NUL or any other text stays text.

Refused (a `MatrixError` at the placeholder's template file and line): a placeholder in a
mapping key, in `metadata.name` or in `kind`, since those are the structure.

Embedded JSON. A string whose text, with neutral values, parses as a JSON object or array (the
seed's `server.json`, `database.json`, `redis.json`, `*_SETTINGS`, `FEATURE_FLAGS`), and any
value of a data key ending in `.json`, is filled as JSON: a token inside a JSON string gets
the value JSON-string escaped, a token outside strings (`"port": {{POSTGRES_PORT}}`) must get
a JSON scalar (a number, true, false, null, or a quoted string). The result must parse, with
the same keys, lists of the same lengths, as with neutral values; otherwise it is refused,
naming the placeholder. So such a block stays valid JSON with the same keys whatever the
values. A placeholder inside a JSON key is refused. Other embedded languages are the template
author's: `{{ x | js }}` (a JavaScript string literal) and `{{ x | json }}` (a JSON literal)
escape for them, as the example's `env.js` does.
"""

from __future__ import annotations

import json
import re
from typing import Any

from envplane.errors import MatrixError
from envplane.render import sandbox
from envplane.render.sandbox import Rendered, Slot

_FIXED = "keys, ConfigMap names, kinds and documents are fixed by the template; values are data"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json(text: str) -> Any:
    return json.loads(text, parse_constant=_no_constant)


def _shape(value: Any) -> Any:
    """Keys and list lengths, not leaf values."""
    if isinstance(value, dict):
        return ("{}", tuple(sorted((k, _shape(v)) for k, v in value.items())))
    if isinstance(value, list):
        return ("[]", tuple(_shape(v) for v in value))
    return "leaf"


class Filler:
    """Fills one rendered file's documents; counts what it builds (aliases included)."""

    def __init__(self, rendered: Rendered, filename: str) -> None:
        self.rendered = rendered
        self.filename = filename
        self.size = 0

    # --- the structure ---------------------------------------------------------------

    def _slot_in(self, text: str) -> Slot | None:
        match = self.rendered.token.search(text)
        return self.rendered.slots[int(match[1])] if match else None

    def _refuse_in(self, text: str, where: str) -> None:
        slot = self._slot_in(text)
        if slot is not None:
            expression = self.rendered.expression(slot)
            raise MatrixError(
                f"{expression} is used as {where}; {_FIXED}",
                file=slot.file,
                line=slot.line,
                hint="write the key or name in the template (choose between them with "
                "{% if %} if need be) and use placeholders in values",
            )

    def fixed(self, doc: Any) -> None:
        """Refuse placeholders where the document's identity is: kind and metadata.name."""
        if not isinstance(doc, dict):
            return
        kind = doc.get("kind")
        if isinstance(kind, str):
            self._refuse_in(kind, "the kind")
        meta = doc.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("name"), str):
            self._refuse_in(meta["name"], "a ConfigMap's name")

    # --- filling ---------------------------------------------------------------------

    def fill(self, value: Any, key: str | None = None) -> Any:
        self._count(1)
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for k, v in value.items():
                if isinstance(k, str):
                    self._refuse_in(k, "a key")
                    self._no_leak(k)
                out[k] = self.fill(v, k if isinstance(k, str) else None)
            return out
        if isinstance(value, list):
            return [self.fill(v, key) for v in value]
        if isinstance(value, str):
            text = self._text(value, key)
            self._no_leak(text)
            self._count(len(text))
            return text
        return value

    def _count(self, amount: int) -> None:
        self.size += amount
        if self.size > sandbox.limits.MAX_OUTPUT_CHARS:
            raise MatrixError(
                f"the rendered file is larger than {sandbox.limits.MAX_OUTPUT_CHARS:,} characters",
                file=self.filename,
                hint="template rendering is bounded: see 'Template bounds' in docs/matrix.md",
            )

    def _no_leak(self, text: str) -> None:
        if self.rendered.nonce in text.lower():
            raise MatrixError(
                "a filter changed a placeholder's output after it was rendered "
                "(a {% filter %} block around placeholders?)",
                file=self.filename,
                hint="apply filters to the variable: {{ NAME | upper }}",
            )

    def _text(self, text: str, key: str | None) -> str:
        if self.rendered.prefix not in text:
            return text
        parts = self.rendered.token.split(text)  # literal, index, literal, index, ...
        filled = self._as_json(parts, key)
        if filled is not None:
            return filled
        slots = self.rendered.slots
        return "".join(p if i % 2 == 0 else slots[int(p)].text for i, p in enumerate(parts))

    def _as_json(self, parts: list[str], key: str | None) -> str | None:
        """The text filled as JSON, or None when the template does not present it as JSON."""
        inside: list[bool] = []  # per token: inside a JSON string?
        in_string = escaped = False
        for i, part in enumerate(parts):
            if i % 2:
                inside.append(in_string)
                escaped = False
                continue
            for char in part:
                if escaped:
                    escaped = False
                elif in_string and char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = not in_string
        tokens = [(int(parts[i]), inside[i // 2]) for i in range(1, len(parts), 2)]
        named_json = key is not None and key.endswith(".json")

        def joined(fill: Any) -> str:
            out = [parts[0]]
            for n, (index, quoted) in enumerate(tokens):
                out.append(fill(index, quoted))
                out.append(parts[2 * n + 2])
            return "".join(out)

        prefix = self.rendered.prefix
        neutral_text = joined(lambda i, quoted: f"{prefix}{i}q" if quoted else "0")
        try:
            neutral = _json(neutral_text)
        except ValueError:
            if named_json:
                slot = self.rendered.slots[tokens[0][0]]
                raise MatrixError(
                    f"{key} is not JSON even with neutral values; fix the template's JSON",
                    file=slot.file,
                    line=slot.line,
                ) from None
            return None
        if not named_json and not isinstance(neutral, (dict, list)):
            return None
        self._no_token_in_json_keys(neutral)
        slots = self.rendered.slots
        for index, quoted in tokens:
            if not quoted:
                self._json_scalar(slots[index], key)

        def real(index: int, quoted: bool) -> str:
            text = slots[index].text
            return json.dumps(text, ensure_ascii=False)[1:-1] if quoted else text

        filled = joined(real)
        try:
            same = _shape(_json(filled)) == _shape(neutral)
        except ValueError:
            same = False
        if not same:
            bare = [slots[i] for i, quoted in tokens if not quoted] or [slots[tokens[0][0]]]
            names = ", ".join(self.rendered.expression(s) for s in bare)
            raise MatrixError(
                f"{names} would change the JSON of {key or 'this value'} (it must parse with "
                "the same keys as the template's)",
                file=bare[0].file,
                line=bare[0].line,
                hint='put a placeholder inside quotes ("{{ NAME }}") to make it a JSON string',
            )
        return filled

    def _no_token_in_json_keys(self, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                self._refuse_in(k, "a JSON key")
                self._no_token_in_json_keys(v)
        elif isinstance(value, list):
            for v in value:
                self._no_token_in_json_keys(v)

    def _json_scalar(self, slot: Slot, key: str | None) -> None:
        try:
            scalar = not isinstance(_json(slot.text), (dict, list))
        except ValueError:
            scalar = False
        if not scalar:  # the value itself is not repeated: it may be a secret
            raise MatrixError(
                f"{self.rendered.expression(slot)} is outside quotes in {key or 'this JSON'}, "
                "so its value must be a JSON number, true, false, null or quoted string; "
                "it is not",
                file=slot.file,
                line=slot.line,
                hint='put the placeholder inside quotes ("{{ NAME }}") to make it a JSON string',
            )


def describe_tokens(text: str, rendered: Rendered) -> str:
    """A message that may quote rendered text: tokens shown as the placeholders they are."""
    return re.sub(rendered.token, lambda m: "{{…}}", text)
