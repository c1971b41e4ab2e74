"""Bounded text capture: keeps the head and the tail of a stream and counts what was cut between.

A cell may print gigabytes; the buffer's memory stays about ``limit`` characters however much is
written, so the host never holds more than that per stream (plus the one message being handled).
"""

from __future__ import annotations

from collections import deque


class OutputBuffer:
    def __init__(self, limit: int):
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self._head: list[str] = []
        self._head_len = 0
        self._tail: deque[str] = deque()
        self._tail_len = 0
        self.cut = 0

    def write(self, text: str) -> None:
        if not text:
            return
        if self._head_len < self.head_limit:
            taken = text[: self.head_limit - self._head_len]
            self._head.append(taken)
            self._head_len += len(taken)
            text = text[len(taken):]
            if not text:
                return
        if len(text) >= self.tail_limit:
            # One huge chunk replaces the whole tail: slice it once rather than queueing it.
            self.cut += self._tail_len + len(text) - self.tail_limit
            self._tail = deque([text[len(text) - self.tail_limit:]]) if self.tail_limit else deque()
            self._tail_len = self.tail_limit
            return
        self._tail.append(text)
        self._tail_len += len(text)
        while self._tail_len > self.tail_limit:
            excess = self._tail_len - self.tail_limit
            first = self._tail[0]
            if len(first) <= excess:
                self._tail.popleft()
                dropped = len(first)
            else:
                self._tail[0] = first[excess:]
                dropped = excess
            self._tail_len -= dropped
            self.cut += dropped

    def getvalue(self) -> str:
        head, tail = "".join(self._head), "".join(self._tail)
        if not self.cut:
            return head + tail
        return f"{head}\n[... {self.cut:,} characters cut ...]\n{tail}"
