"""A scripted stand-in for the Anthropic Messages API, served on 127.0.0.1 in a background thread.

Why a real server: the SDK sends with ``httpx2``, which ``respx`` cannot intercept, and only a real
HTTP server exercises what matters: SSE streaming, the SDK's retries (``retry-after``, 429/529/5xx)
and connections dropped mid-stream. Point the real SDK, or a ``ModelConfig``, at ``api.base_url``::

    def test_something(anthropic_api):            # fixture in tests/conftest.py: started and stopped
        anthropic_api.enqueue_tool_use(code="print(df.shape)")
        anthropic_api.enqueue_text("Done: 3 rows.")
        config = ModelConfig(name="claude-sonnet-5-5", base_url=anthropic_api.base_url)
        ...run the code under test...
        assert len(anthropic_api.requests) == 2
        assert anthropic_api.requests[1].body["messages"][-1]["content"][0]["type"] == "tool_result"

Outside pytest: ``with FakeAnthropicAPI() as api: ...`` (or ``api = FakeAnthropicAPI().start()``, ``api.stop()``).

Script: every ``POST /v1/messages`` consumes the next entry of a FIFO queue, in order:

- ``enqueue_text("...", stop_reason="end_turn")``: one text block.
- ``enqueue_tool_use(code="...")``: one ``run_python_code`` call; ``code=["a", "b"]`` makes two calls in
  the same turn; ``text="Let me look"`` puts a text block first; ``name=``/``inputs=[{...}]`` for other tools;
  ``results={...}`` adds a ``submit_results`` call.
- ``enqueue_results({"total": 3.2})``: one ``submit_results`` call with those values (``text=`` too).
- ``enqueue_turn(blocks, stop_reason=...)``: any blocks, built with ``text_block``, ``tool_use_block``,
  ``run_python``, ``thinking_block``; e.g. ``stop_reason="max_tokens"``, ``"pause_turn"``, ``"refusal"``,
  ``"model_context_window_exceeded"``.
- ``enqueue_error(status, retry_after=None, error_type=None, message=None, headers=None)``: an HTTP
  error with the API's JSON error body. The type follows the status (400 invalid_request_error,
  401 authentication_error, 403 permission_error, 404 not_found_error, 413 request_too_large,
  429 rate_limit_error, 500 api_error, 529 overloaded_error). ``retry_after`` (seconds, float ok)
  is sent as ``retry-after``, which the SDK honours; without it the SDK backs off 0.5 s, 1 s, ...
  so tests of 5xx usually pass ``retry_after=0.01``.
- ``enqueue_stream_cut(after_events=4)``: HTTP 200, the first SSE events of a turn, then the
  connection closes mid-body (chunked encoding left unterminated, as a dropped connection looks);
  ``graceful=True`` ends the body cleanly there instead (no ``message_stop`` ever arrives).
- ``enqueue_stream_error("overloaded_error", after_events=3)``: HTTP 200, some events, then an SSE
  ``error`` event, as the real API does when it fails after the response has started.
- ``enqueue_reset()``: the connection is reset (TCP RST) before any response, as a dropped link or a
  restarting proxy does; the SDK retries it as a connection error.
- ``enqueue_raw_tool_use('{"code": print(1)}')``: a tool call whose ``input_json_delta`` chunks join
  to exactly that text, valid JSON or not (``'{"code": "print('`` is cut short, ``'[1]'`` is no object).

Every request is first checked against the rules the real API enforces, and refused with its 400
``invalid_request_error`` and wording, without consuming a script entry (``request_problem``):
empty or whitespace-only text blocks, a final assistant message ending in whitespace, more than 4
``cache_control`` blocks, a ``tool_use`` not answered by ``tool_result`` blocks first in the next
user message (or a ``tool_result`` with no ``tool_use`` before it), roles that do not alternate or a
first message that is not the user's, a ``tool_choice`` whose type is not auto|any|tool|none, that
names a tool not in ``tools``, that comes without tools, or that forces a tool with thinking enabled.
(The API reference says the live API merges consecutive same-role messages; the loop never sends
them, so the stand-in refuses them to catch a loop that would.) The thinking message is the API's
own; the other ``tool_choice`` wordings are the stand-in's. A scripted turn that does not call the
tool ``tool_choice`` forces (``tool``; any tool for ``any``) is refused with a 400 too: the real API
always calls it, so such a script is a mistake in the test.

``FakeAnthropicAPI(context_window=N)`` (or setting ``api.context_window``) answers a request whose
input is over N tokens with the API's 400 ``invalid_request_error`` "prompt is too long: X tokens >
N maximum", without consuming a script entry, as the real API refuses a conversation past the
model's context window. ``enqueue_context_window(headroom=300)`` sets it mid-script: when the
requests reach that entry, the window becomes the size of the last request answered plus
``headroom`` tokens (negative: smaller than it), and the next entry answers the same request.

Each turn entry also takes ``usage={...}`` (override any usage number), ``model=`` (else the
request's model is echoed), ``delay=`` (seconds before each SSE event, for timeout tests) and
``latency=`` (seconds before the response starts, as a real model thinks before its first token;
for benchmarks that need a model's pace).
With an empty queue the server answers 400 ``invalid_request_error`` "FakeAnthropicAPI: no scripted
response left" (the SDK does not retry a 400), so an unexpected extra call fails loudly.
``FakeAnthropicAPI(api_key="sk-...")`` answers 401 to any request carrying another key
(``x-api-key``, or ``authorization: Bearer``, which is what anthropic 2.x sends).

Streams follow the real API: ``message_start`` (with usage), ``ping``, per block
``content_block_start`` / ``content_block_delta`` (``text_delta`` in chunks, ``input_json_delta``
split in several chunks, the first one empty) / ``content_block_stop``, ``message_delta``
(stop_reason and cumulative usage), ``message_stop``. ``stream: false`` gets the whole message as JSON.

Usage is computed from the request like a cached conversation: about 4 characters a token per
block (tools, then system, then message blocks); prefixes ending at a ``cache_control`` breakpoint
are written to a cache held by the server; a later request whose prefix matches a written one reads
it (``cache_read_input_tokens``), the rest up to its last breakpoint is written
(``cache_creation_input_tokens``), and what follows the last breakpoint is ``input_tokens``.
``cache_control`` itself is ignored when matching, as the real API does. There is no minimum
cacheable length unless ``min_cacheable_tokens`` is given.

Recorded for assertions: ``api.requests`` (``RecordedRequest``: ``method``, ``path``, ``headers`` with
lower-case keys, ``api_key`` the key sent, ``body`` parsed JSON, ``status`` answered, ``usage``
returned or None, ``arrived`` its ``time.monotonic()`` once its body was read),
``api.bodies`` (the bodies only), ``api.pending`` (entries not consumed yet).
"""

from __future__ import annotations

import hashlib
import json
import math
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RUN_PYTHON_TOOL = "run_python_code"
SUBMIT_RESULTS_TOOL = "submit_results"
RAW_INPUT = "_fake_raw_input"  # a tool_use block's input as streamed text, sent verbatim

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}
ERROR_MESSAGES = {
    "invalid_request_error": "Invalid request",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "api_error": "Internal server error",
    "overloaded_error": "Overloaded",
}


# --- content blocks ------------------------------------------------------------------------------

_ids = iter(range(1, 10**9))
_ids_lock = threading.Lock()


def _new_id(prefix: str) -> str:
    with _ids_lock:
        n = next(_ids)
    return f"{prefix}_01Fake{n:018d}"


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def tool_use_block(name: str, input: dict[str, Any], id: str | None = None) -> dict[str, Any]:  # noqa: A002
    return {"type": "tool_use", "id": id or _new_id("toolu"), "name": name, "input": input}


def run_python(code: str, id: str | None = None) -> dict[str, Any]:  # noqa: A002
    """A ``run_python_code`` tool call."""
    return tool_use_block(RUN_PYTHON_TOOL, {"code": code}, id=id)


def thinking_block(thinking: str, signature: str = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pk") -> dict[str, Any]:
    return {"type": "thinking", "thinking": thinking, "signature": signature}


# --- script entries -------------------------------------------------------------------------------


@dataclass
class _Turn:
    blocks: list[dict[str, Any]]
    stop_reason: str | None
    usage: dict[str, int] = field(default_factory=dict)
    model: str | None = None
    delay: float = 0.0
    cut_after: int | None = None  # close the connection after this many SSE events
    graceful_cut: bool = False  # ... or end the HTTP body cleanly there
    error_after: int | None = None  # send an SSE error event after this many SSE events
    error_type: str = "overloaded_error"
    latency: float = 0.0  # seconds before the response starts


@dataclass
class _Error:
    status: int
    error_type: str
    message: str
    headers: dict[str, str]


@dataclass
class _Window:
    """Set the context window relative to the last request answered."""

    headroom: int


@dataclass
class _Reset:
    """Reset the connection instead of answering."""


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or the raw text when it is not JSON
    status: int | None = None  # what the fake answered
    usage: dict[str, int] | None = None  # the usage it reported, for turns
    arrived: float = field(default_factory=time.monotonic)  # its body read; benchmarks time a first request by it

    @property
    def api_key(self) -> str | None:
        """The key sent: ``x-api-key``, or ``authorization: Bearer ...`` (what anthropic 2.x sends)."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" and token else None


class FakeAnthropicAPI:
    """See the module docstring."""

    def __init__(self, *, api_key: str | None = None, min_cacheable_tokens: int = 0, chars_per_token: int = 4,
                 context_window: int | None = None):
        self.api_key = api_key
        self.context_window = context_window
        self.last_prompt_tokens = 0  # of the last request answered with a turn
        self.min_cacheable_tokens = min_cacheable_tokens
        self.chars_per_token = chars_per_token
        self.requests: list[RecordedRequest] = []
        self._queue: deque[_Turn | _Error | _Reset | _Window] = deque()
        self._cache: set[str] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---

    def start(self) -> FakeAnthropicAPI:
        handler = type("_Handler", (_Handler,), {"api": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-anthropic-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeAnthropicAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeAnthropicAPI is not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- script ---

    def enqueue_turn(self, blocks: list[dict[str, Any]], stop_reason: str | None = "end_turn", *,
                     usage: dict[str, int] | None = None, model: str | None = None,
                     delay: float = 0.0, latency: float = 0.0) -> FakeAnthropicAPI:
        self._push(_Turn([dict(b) for b in blocks], stop_reason, dict(usage or {}), model, delay, latency=latency))
        return self

    def enqueue_text(self, text: str, stop_reason: str = "end_turn", **kwargs: Any) -> FakeAnthropicAPI:
        return self.enqueue_turn([text_block(text)], stop_reason, **kwargs)

    def enqueue_tool_use(self, code: str | list[str] | None = None, *, text: str | None = None,
                         name: str = RUN_PYTHON_TOOL, inputs: list[dict[str, Any]] | None = None,
                         results: dict[str, Any] | None = None, stop_reason: str = "tool_use",
                         **kwargs: Any) -> FakeAnthropicAPI:
        """One turn with one or more tool calls: ``code="..."``, ``code=[...]`` or ``inputs=[{...}, ...]``;
        ``results={...}`` adds a ``submit_results`` call with those values after them."""
        if inputs is None:
            codes = [code] if isinstance(code, str) else list(code or [])
            inputs = [{"code": c} for c in codes]
        if not inputs:
            raise ValueError("enqueue_tool_use needs code=... or inputs=[...]")
        blocks = ([text_block(text)] if text else []) + [tool_use_block(name, i) for i in inputs]
        if results is not None:
            blocks.append(tool_use_block(SUBMIT_RESULTS_TOOL, results))
        return self.enqueue_turn(blocks, stop_reason, **kwargs)

    def enqueue_results(self, values: dict[str, Any], *, text: str | None = None, **kwargs: Any) -> FakeAnthropicAPI:
        """One ``submit_results`` call with ``values`` as its input (valid or not: the loop checks it)."""
        return self.enqueue_tool_use(name=SUBMIT_RESULTS_TOOL, inputs=[values], text=text, **kwargs)

    def enqueue_error(self, status: int, *, retry_after: float | None = None, error_type: str | None = None,
                      message: str | None = None, headers: dict[str, str] | None = None) -> FakeAnthropicAPI:
        error_type = error_type or ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        headers = dict(headers or {})
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        self._push(_Error(status, error_type, message or ERROR_MESSAGES.get(error_type, "Error"), headers))
        return self

    def enqueue_stream_cut(self, after_events: int = 4, blocks: list[dict[str, Any]] | None = None,
                           stop_reason: str = "end_turn", *, graceful: bool = False) -> FakeAnthropicAPI:
        """HTTP 200, the first ``after_events`` SSE events of a turn, then the connection drops.

        ``graceful=True``: the HTTP body ends cleanly instead, just without the remaining events
        (no ``message_stop``), as a proxy that closes a close-delimited response would leave it.
        """
        blocks = blocks or [text_block("This answer will be cut off before it ends. " * 3)]
        self._push(_Turn([dict(b) for b in blocks], stop_reason, cut_after=after_events, graceful_cut=graceful))
        return self

    def enqueue_stream_error(self, error_type: str = "overloaded_error", *, after_events: int = 3,
                             blocks: list[dict[str, Any]] | None = None) -> FakeAnthropicAPI:
        """HTTP 200, the first ``after_events`` SSE events, then an SSE ``error`` event."""
        blocks = blocks or [text_block("This answer will fail before it ends. " * 3)]
        self._push(_Turn([dict(b) for b in blocks], "end_turn", error_after=after_events, error_type=error_type))
        return self

    def enqueue_raw_tool_use(self, raw_input: str, *, name: str = RUN_PYTHON_TOOL, text: str | None = None,
                             stop_reason: str = "tool_use") -> FakeAnthropicAPI:
        """One tool call whose streamed input is ``raw_input`` verbatim (see the module docstring)."""
        block = {**tool_use_block(name, {}), RAW_INPUT: raw_input}
        return self.enqueue_turn(([text_block(text)] if text else []) + [block], stop_reason)

    def enqueue_context_window(self, headroom: int) -> FakeAnthropicAPI:
        self._push(_Window(headroom))
        return self

    def enqueue_reset(self) -> FakeAnthropicAPI:
        self._push(_Reset())
        return self

    def _push(self, entry: _Turn | _Error | _Reset | _Window) -> None:
        with self._lock:
            self._queue.append(entry)

    def _push_front(self, entry: _Turn | _Error | _Reset | _Window) -> None:
        with self._lock:
            self._queue.appendleft(entry)

    def _pop(self) -> _Turn | _Error | _Reset | _Window | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    @property
    def bodies(self) -> list[Any]:
        return [r.body for r in self.requests]

    def reset_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    # --- usage ---

    def _tokens(self, value: Any) -> int:
        return max(1, math.ceil(len(json.dumps(value, sort_keys=True, ensure_ascii=False)) / self.chars_per_token))

    def prompt_tokens(self, body: dict[str, Any]) -> int:
        """The request's whole input in tokens (tools, system, messages), as counted for usage."""
        units: list[Any] = list(body.get("tools") or [])
        system = body.get("system")
        units += [text_block(system)] if isinstance(system, str) else list(system or [])
        for message in body.get("messages") or []:
            content = message.get("content")
            units += [text_block(content)] if isinstance(content, str) else list(content or [])
        return sum(self._tokens({k: v for k, v in u.items() if k != "cache_control"}) for u in units)

    def input_usage(self, body: dict[str, Any]) -> dict[str, int]:
        """Input, cache-read and cache-write tokens for a request, updating the cache."""
        units: list[dict[str, Any]] = list(body.get("tools") or [])
        system = body.get("system")
        units += [text_block(system)] if isinstance(system, str) else list(system or [])
        for message in body.get("messages") or []:
            content = message.get("content")
            blocks = [text_block(content)] if isinstance(content, str) else list(content or [])
            units += [{"role": message.get("role"), **b} for b in blocks]
        tokens, hashes, digest = [], [], hashlib.sha256()
        for unit in units:
            stripped = {k: v for k, v in unit.items() if k != "cache_control"}
            tokens.append(self._tokens(stripped))
            digest.update(json.dumps(stripped, sort_keys=True).encode())
            hashes.append(digest.copy().hexdigest())
        breakpoints = [i for i, u in enumerate(units) if isinstance(u, dict) and u.get("cache_control")]
        if not breakpoints:
            return {"input_tokens": sum(tokens), "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        last = breakpoints[-1]
        with self._lock:
            read_end = max((i for i in range(last + 1) if hashes[i] in self._cache), default=-1)
            for b in breakpoints:
                if sum(tokens[: b + 1]) >= self.min_cacheable_tokens:
                    self._cache.add(hashes[b])
        if sum(tokens[: last + 1]) < self.min_cacheable_tokens:
            return {"input_tokens": sum(tokens), "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        return {
            "input_tokens": sum(tokens[last + 1:]),
            "cache_creation_input_tokens": sum(tokens[read_end + 1: last + 1]),
            "cache_read_input_tokens": sum(tokens[: read_end + 1]),
        }

    def output_tokens(self, blocks: list[dict[str, Any]]) -> int:
        return max(1, sum(self._tokens(b.get("text") or b.get("thinking") or b.get("input") or "") for b in blocks))


# --- what the real API refuses -------------------------------------------------------------------

MAX_CACHE_CONTROL_BLOCKS = 4


def request_problem(body: dict[str, Any]) -> str | None:
    """The real API's 400 message for a request it would refuse, or None: the rules a conversation
    built by the loop must keep, checked on every request so each test that uses the stand-in keeps them."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    for check in (_roles_problem, _text_problem, _tool_result_problem, _cache_control_problem, _tool_choice_problem):
        if problem := check(body, messages):
            return problem
    return None


def _content(message: dict[str, Any]) -> list[Any]:
    content = message.get("content")
    return [text_block(content)] if isinstance(content, str) else list(content or [])


def _roles_problem(body: dict[str, Any], messages: list[Any]) -> str | None:
    if messages and messages[0].get("role") != "user":
        return 'messages: first message must use the "user" role'
    for previous, message in zip(messages, messages[1:]):
        if previous.get("role") == message.get("role"):
            return (f'messages: roles must alternate between "user" and "assistant", but found multiple '
                    f'"{message.get("role")}" roles in a row')
    return None


def _text_problem(body: dict[str, Any], messages: list[Any]) -> str | None:
    for i, message in enumerate(messages):
        for j, block in enumerate(_content(message)):
            if isinstance(block, dict) and block.get("type") == "text":
                if not block.get("text"):
                    return f"messages.{i}.content.{j}.text: text content blocks must be non-empty"
                if not block["text"].strip():
                    return f"messages.{i}.content.{j}.text: text content blocks must contain non-whitespace text"
    if messages and messages[-1].get("role") == "assistant":
        blocks = _content(messages[-1])
        if blocks and isinstance(blocks[-1], dict) and blocks[-1].get("type") == "text" \
                and blocks[-1]["text"] != blocks[-1]["text"].rstrip():
            return "messages: final assistant content cannot end with trailing whitespace"
    return None


def _tool_result_problem(body: dict[str, Any], messages: list[Any]) -> str | None:
    for i, message in enumerate(messages):
        blocks = [b for b in _content(message) if isinstance(b, dict)]
        if message.get("role") == "assistant":
            calls = [b["id"] for b in blocks if b.get("type") == "tool_use"]
            if not calls or i + 1 == len(messages):
                continue
            answer = [b for b in _content(messages[i + 1]) if isinstance(b, dict)]
            leading = []
            for block in answer:
                if block.get("type") != "tool_result":
                    break
                leading.append(block.get("tool_use_id"))
            if missing := [c for c in calls if c not in leading]:
                return (f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                        f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
                        f"`tool_result` block in the next message.")
        else:
            asked = {b.get("id") for b in (_content(messages[i - 1]) if i else []) if isinstance(b, dict)
                     and b.get("type") == "tool_use"}
            for j, block in enumerate(blocks):
                if block.get("type") == "tool_result" and block.get("tool_use_id") not in asked:
                    return (f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                            f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                            f"`tool_use` block in the previous message.")
    return None


def _cache_control_problem(body: dict[str, Any], messages: list[Any]) -> str | None:
    system = body.get("system")
    blocks = [*(body.get("tools") or []), *(system if isinstance(system, list) else []),
              *(b for m in messages for b in _content(m))]
    found = sum(1 for b in blocks if isinstance(b, dict) and b.get("cache_control"))
    if found > MAX_CACHE_CONTROL_BLOCKS:
        return f"A maximum of {MAX_CACHE_CONTROL_BLOCKS} blocks with cache_control may be provided. Found {found}."
    return None


TOOL_CHOICE_TYPES = ("auto", "any", "tool", "none")


def _tool_choice_problem(body: dict[str, Any], messages: list[Any]) -> str | None:
    choice = body.get("tool_choice")
    if choice is None:
        return None
    if not isinstance(choice, dict) or choice.get("type") not in TOOL_CHOICE_TYPES:
        given = choice.get("type") if isinstance(choice, dict) else choice
        return (f"tool_choice.type: Input tag {given!r} found using 'type' does not match any of the expected tags: "
                f"{', '.join(repr(t) for t in TOOL_CHOICE_TYPES)}")
    names = [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)]
    if choice["type"] != "none" and not names:
        return "tool_choice: tool_choice may only be specified while providing tools"
    if choice["type"] == "tool":
        if not isinstance(choice.get("name"), str):
            return "tool_choice.tool.name: Field required"
        if choice["name"] not in names:
            return f"tool_choice.name: tool {choice['name']!r} was not found in the tools provided"
    thinking = body.get("thinking")
    if choice["type"] in ("any", "tool") and isinstance(thinking, dict) and thinking.get("type") == "enabled":
        return "Thinking may not be enabled when tool_choice forces tool use."
    return None


def script_problem(body: dict[str, Any], blocks: list[dict[str, Any]]) -> str | None:
    """Why a scripted turn could not be the real API's answer to this request's ``tool_choice``: the
    API always calls the tool it is forced to (``tool``), or some tool (``any``). A script that does
    not is a mistake in the test, refused rather than replayed."""
    choice = body.get("tool_choice")
    called = [b.get("name") for b in blocks if b.get("type") == "tool_use"]
    if not isinstance(choice, dict):
        return None
    if choice.get("type") == "tool" and choice.get("name") not in called:
        return (f"FakeAnthropicAPI: tool_choice forces {choice.get('name')!r} but the scripted turn calls "
                f"{', '.join(map(repr, called)) or 'no tool'}")
    if choice.get("type") == "any" and not called:
        return "FakeAnthropicAPI: tool_choice 'any' forces a tool call but the scripted turn calls none"
    return None


def _chunks(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def _sse_events(turn: _Turn, model: str, usage: dict[str, int]) -> list[tuple[str, dict[str, Any]]]:
    start_usage = {**usage, "output_tokens": 1}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": {
            "id": _new_id("msg"), "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": start_usage}}),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(turn.blocks):
        kind = block["type"]
        if kind == "text":
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": c} for c in _chunks(block["text"], 24)]
        elif kind in ("tool_use", "server_tool_use"):
            start = {k: v for k, v in block.items() if k != RAW_INPUT} | {"input": {}}
            raw = block[RAW_INPUT] if RAW_INPUT in block else json.dumps(block["input"])
            size = max(1, math.ceil(len(raw) / 3))  # several chunks, split anywhere, like the real API
            deltas = [{"type": "input_json_delta", "partial_json": c} for c in ["", *_chunks(raw, size)]]
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": c} for c in _chunks(block["thinking"], 24)]
            deltas.append({"type": "signature_delta", "signature": block.get("signature", "")})
        else:  # anything else arrives whole in its start event
            start, deltas = block, []
        events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": start}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": turn.stop_reason, "stop_sequence": None},
                                     "usage": usage}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client that hung up (the SDK closing a pooled connection): not worth a traceback
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    api: FakeAnthropicAPI
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streams, as the SDK's connection pool expects

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:
        self._record(None)
        self._send_error(404, "not_found_error", f"FakeAnthropicAPI serves POST /v1/messages only, not GET {self.path}")

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        record = self._record(body)
        path = self.path.split("?", 1)[0]
        if path != "/v1/messages":
            return self._send_error(404, "not_found_error",
                                    f"FakeAnthropicAPI serves POST /v1/messages only, not {path}", record)
        if self.api.api_key is not None and record.api_key != self.api.api_key:
            return self._send_error(401, "authentication_error", "invalid x-api-key", record)
        if isinstance(body, dict) and (problem := request_problem(body)):
            return self._send_error(400, "invalid_request_error", problem, record)
        entry = self.api._pop()
        while isinstance(entry, _Window):
            self.api.context_window = self.api.last_prompt_tokens + entry.headroom
            entry = self.api._pop()
        window = self.api.context_window
        if window is not None and isinstance(body, dict) and (prompt := self.api.prompt_tokens(body)) > window:
            if entry is not None:
                self.api._push_front(entry)  # refused before any turn: the script entry is still to come
            return self._send_error(400, "invalid_request_error", f"prompt is too long: {prompt} tokens > "
                                                                  f"{window} maximum", record)
        if entry is None:
            return self._send_error(400, "invalid_request_error",
                                    "FakeAnthropicAPI: no scripted response left for request "
                                    f"#{len(self.api.requests)}",
                                    record)
        if isinstance(entry, _Error):
            return self._send_error(entry.status, entry.error_type, entry.message, record, entry.headers)
        if isinstance(entry, _Reset):
            # SO_LINGER 0: close() sends RST at once, "connection reset by peer" on the client's side.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return None
        if not isinstance(body, dict):
            return self._send_error(400, "invalid_request_error", "expected a JSON object body", record)
        if problem := script_problem(body, entry.blocks):
            return self._send_error(400, "invalid_request_error", problem, record)
        self.api.last_prompt_tokens = self.api.prompt_tokens(body)
        usage = {**self.api.input_usage(body), "output_tokens": self.api.output_tokens(entry.blocks),
                 "service_tier": "standard"}
        usage.update(entry.usage)
        record.status, record.usage = 200, usage
        model = entry.model or body.get("model") or "claude-sonnet-5-5"
        if entry.latency:
            time.sleep(entry.latency)
        if body.get("stream"):
            self._stream(entry, model, usage)
        else:
            content = [{k: v for k, v in b.items() if k != RAW_INPUT} for b in entry.blocks]
            message = {"id": _new_id("msg"), "type": "message", "role": "assistant", "model": model,
                       "content": content, "stop_reason": entry.stop_reason, "stop_sequence": None,
                       "usage": usage}
            self._send_json(200, message)

    def _record(self, body: Any) -> RecordedRequest:
        record = RecordedRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        with self.api._lock:
            self.api.requests.append(record)
        return record

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", _new_id("req"))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_error(self, status: int, error_type: str, message: str, record: RecordedRequest | None = None,
                    headers: dict[str, str] | None = None) -> None:
        if record is not None:
            record.status = status
        payload = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": _new_id("req")}
        self._send_json(status, payload, headers)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _stream(self, turn: _Turn, model: str, usage: dict[str, int]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", _new_id("req"))
        self.end_headers()
        for sent, (name, data) in enumerate(_sse_events(turn, model, usage)):
            if turn.cut_after is not None and sent >= turn.cut_after:
                if turn.graceful_cut:
                    break
                self.close_connection = True  # no terminating chunk: the body ends early, as a dropped link does
                return
            if turn.error_after is not None and sent >= turn.error_after:
                error = {"type": "error", "error": {"type": turn.error_type,
                                                    "message": ERROR_MESSAGES.get(turn.error_type, "Error")}}
                self._chunk(f"event: error\ndata: {json.dumps(error)}\n\n".encode())
                break
            if turn.delay:
                time.sleep(turn.delay)
            self._chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
