"""Walk a huge JSON object member by member without loading it.

AWS Price List offer files are gigabytes (AmazonEC2's is several); each product and each
SKU's terms is small. `Reader` holds a window of the text, decodes one member's value at a
time with the standard decoder, and skips what the caller does not want.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

_CHUNK = 1 << 20
_WS = " \t\r\n"


class JsonShapeError(ValueError):
    """The text is not JSON, or not the shape asked for; `offset` is the character where."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at character {offset})")
        self.offset = offset


class Reader:
    def __init__(self, stream: IO[str], max_value: int = 64 << 20) -> None:
        self._stream = stream
        self._buf = ""
        self._pos = 0
        self._base = 0  # characters dropped before _buf
        self._eof = False
        self._max = max_value
        self._decoder = json.JSONDecoder()

    @property
    def offset(self) -> int:
        return self._base + self._pos

    def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = self._stream.read(_CHUNK)
        if not chunk:
            self._eof = True
            return False
        self._base += self._pos
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ('' at the end)."""
        while True:
            while self._pos < len(self._buf) and self._buf[self._pos] in _WS:
                self._pos += 1
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._fill():
                return ""

    def expect(self, char: str) -> None:
        got = self.peek()
        if got != char:
            raise JsonShapeError(f"expected {char!r}, found {got or 'the end'!r}", self.offset)
        self._pos += 1

    def value(self) -> Any:
        """Decode the next value whole."""
        self.peek()
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                if self._fill():
                    self._check_size()
                    continue
                raise JsonShapeError(f"not JSON: {exc.msg}", self._base + exc.pos) from None
            if end == len(self._buf) and self._fill():
                continue  # a number may go on in the next chunk
            self._pos = end
            return value

    def _check_size(self) -> None:
        if len(self._buf) - self._pos > self._max:
            raise JsonShapeError(
                f"one value is larger than {self._max >> 20} MiB; not an offer file's shape",
                self.offset,
            )

    def members(self) -> Iterator[str]:
        """The keys of the object that starts here; the caller reads or skips each value
        before asking for the next key."""
        self.expect("{")
        if self.peek() == "}":
            self._pos += 1
            return
        while True:
            if self.peek() != '"':
                raise JsonShapeError("expected a key", self.offset)
            key = self.value()
            self.expect(":")
            yield key
            nxt = self.peek()
            self._pos += 1
            if nxt == "}":
                return
            if nxt != ",":
                raise JsonShapeError(
                    f"expected ',' or '}}', found {nxt or 'the end'!r}", self.offset
                )

    def skip(self, depth: int = 0) -> None:
        """Skip the next value, descending two levels into objects so no big one is decoded."""
        if self.peek() == "{" and depth < 2:
            for _ in self.members():
                self.skip(depth + 1)
        else:
            self.value()
