"""Byte streams shared by the importers (kg/ncci, kg/coverage)."""

from __future__ import annotations

import io
from typing import Any, Protocol


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


class Prefixed(io.RawIOBase):
    """A byte stream that first gives back the bytes already read to sniff it (a file's head), then the rest."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
