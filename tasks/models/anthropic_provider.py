"""Claude through the official Anthropic SDK: streamed requests, prompt caching, errors a user can act on.

Retries happen in one layer per kind of failure, never two stacked:

- Request-level failures (connection errors, timeouts before a response, 408/409/429 honouring
  ``retry-after``, 5xx, 529 overloaded) are retried by the SDK itself, with its own exponential
  backoff, ``max_retries`` times. This module does not retry them again.
- A stream that breaks after the response has started (connection dropped mid-body, a read
  timeout mid-stream, an SSE ``error`` event of type overloaded/api_error, a body that ends before
  ``message_stop``) happens past the SDK's retry point, so this provider re-sends the request
  itself, ``stream_retries`` times with a short backoff. Only those failures.

When retries are exhausted the provider raises ``ModelError(transient=True)``; requests that no
retry can fix (401/403 key problems, 400/404 bad request or unknown model) raise
``ModelError(transient=False)`` at once, with the API's own message and a hint.
"""

from __future__ import annotations

import copy
import logging
import re
import time
from pathlib import Path
from typing import Any

import anthropic

try:  # anthropic >= 2 sends with httpx2; older releases with httpx
    import httpx2 as _httpx
except ImportError:  # pragma: no cover
    import httpx as _httpx  # type: ignore[no-redef]

from tasks.config.schema import ModelConfig
from tasks.errors import ContextWindowExceeded, ModelError
from tasks.secrets import SecretReader

from .credentials import anthropic_api_key
from .base import NO_TEXT, ModelProvider, ModelRequest, ModelTurn, Usage
from .pricing import configured_cost, turn_cost

log = logging.getLogger(__name__)

EPHEMERAL = {"type": "ephemeral"}
MAX_CACHE_BREAKPOINTS = 4  # the API's limit; this provider sets 3: system, last tool, last message block
# Block types that accept cache_control (thinking blocks, and empty text blocks, do not).
_CACHEABLE_BLOCKS = {"text", "image", "document", "tool_use", "tool_result", "search_result"}
# SSE error events worth re-sending the request for (the others are about the request itself).
_TRANSIENT_STREAM_ERRORS = {"overloaded_error", "api_error", "rate_limit_error", "timeout_error"}
_SDK_RETRIED_STATUSES = {408, 409, 429}  # and every 5xx: what the SDK retries (its _should_retry)
# The API's wording for a conversation past the context window: "prompt is too long: 210000 tokens > 200000 maximum".
_PROMPT_TOO_LONG = re.compile(r"prompt is too long(?::\s*(\d+)\s*tokens\s*>\s*(\d+))?", re.IGNORECASE)
_KEY_HINT = ("check ANTHROPIC_API_KEY (environment or .env) or the Prefect Secret block named in "
             "model.api_key_secret")


class _StreamBroken(Exception):
    """The response started, then broke: retried here, since the SDK's retries are behind us.
    ``billed``: the usage the response reported before it broke; the API bills it all the same."""

    def __init__(self, text: str, billed: Usage | None = None):
        super().__init__(text)
        self.billed = billed


class _ToolInputNotJson(_StreamBroken):
    """A tool call whose streamed input is not JSON: the SDK cannot build the message, so there is
    no turn to answer with an error; asking again is the only way on."""


class AnthropicProvider(ModelProvider):
    name = "anthropic"

    def __init__(self, config: ModelConfig, api_key: str, *, max_retries: int = 4, stream_retries: int = 2,
                 stream_retry_delay: float = 1.0):
        """``max_retries``: the SDK's retries of request-level failures (its own backoff, honouring
        ``retry-after``). ``stream_retries``: ours, of streams broken mid-message, after
        ``stream_retry_delay`` seconds, doubling each time."""
        if not api_key:
            raise ModelError("no Anthropic API key given: set ANTHROPIC_API_KEY in the environment or .env, "
                             "or name a Prefect Secret block in model.api_key_secret")
        self.config = config
        self.model, self.max_tokens = config.name, config.max_tokens
        self.max_retries = max_retries
        self.stream_retries = stream_retries
        self.stream_retry_delay = stream_retry_delay
        self._secret = api_key  # only to scrub it from any message, should an error ever echo it
        self._client = anthropic.Anthropic(api_key=api_key, base_url=config.base_url, timeout=config.timeout,
                                           max_retries=max_retries)

    @classmethod
    def from_config(cls, config: ModelConfig, config_dir: Path, read_secret: SecretReader | None = None,
                    **kwargs: Any) -> AnthropicProvider:
        """Resolve the key (see ``credentials.anthropic_api_key``) and build the provider."""
        return cls(config, anthropic_api_key(config, config_dir, read_secret), **kwargs)

    def __repr__(self) -> str:  # never the key
        return f"AnthropicProvider(model={self.config.name!r}, base_url={self.config.base_url!r})"

    def close(self) -> None:
        self._client.close()

    # --- the request --------------------------------------------------------------------------

    def request_params(self, request: ModelRequest) -> dict[str, Any]:
        """The keyword arguments of ``messages.stream``, with cache breakpoints; the request is not modified."""
        params: dict[str, Any] = {
            "model": self.config.name,
            "max_tokens": self.config.max_tokens,
            "messages": with_message_breakpoint(without_blank_text(request.messages)),
        }
        if request.system:
            params["system"] = [{"type": "text", "text": request.system, "cache_control": EPHEMERAL}]
        if request.tools:
            tools = [_without_cache_control(t) for t in request.tools]
            tools[-1]["cache_control"] = EPHEMERAL
            params["tools"] = tools
            if request.force_tool:
                # The API refuses a forced tool together with extended thinking; runs do not enable thinking.
                params["tool_choice"] = {"type": "tool", "name": request.force_tool}
            elif not request.allow_tools:
                # Tools stay defined (the cache prefix and the tool_use blocks in the history stay
                # valid); the model just cannot call one this turn.
                params["tool_choice"] = {"type": "none"}
        return params

    def next_turn(self, request: ModelRequest) -> ModelTurn:
        params = self.request_params(request)
        attempts = self.stream_retries + 1
        billed_before = Usage()  # of the responses that broke: paid for, so counted in the turn
        for attempt in range(1, attempts + 1):
            try:
                message = self._stream(params)
            except _StreamBroken as broken:
                billed_before = billed_before + (broken.billed or Usage())
                if attempt < attempts:
                    delay = self.stream_retry_delay * 2 ** (attempt - 1)
                    log.warning("Anthropic response stream broke mid-message (%s); retrying in %.2f s (%d/%d)",
                                self._scrub(str(broken)), delay, attempt, self.stream_retries)
                    time.sleep(delay)
                    continue
                if isinstance(broken, _ToolInputNotJson):
                    raise ModelError(self._scrub(
                        f"Claude's tool call came with input that is not valid JSON {attempts} times in a row "
                        f"(last: {broken}); the request was sent again each time. Try again later"), transient=True
                    ) from broken
                raise ModelError(self._scrub(
                    f"the Anthropic API response stream broke mid-message {attempts} times in a row (last: {broken}); "
                    f"each request itself succeeded (the SDK retries failed requests up to {self.max_retries} times), "
                    f"then the response was cut. Try again later; if it persists, check the network or proxy "
                    f"between this machine and {self._endpoint()}"), transient=True) from broken
            except anthropic.APIStatusError as exc:
                raise self._status_error(exc) from exc
            except anthropic.APITimeoutError as exc:
                raise ModelError(self._scrub(
                    f"the Anthropic API did not answer within model.timeout={self.config.timeout:g} s, "
                    f"{self.max_retries + 1} attempts ({self.max_retries} SDK retries); try again later or raise "
                    f"model.timeout"), transient=True) from exc
            except anthropic.APIConnectionError as exc:
                cause = exc.__cause__ or exc
                raise ModelError(self._scrub(
                    f"could not connect to the Anthropic API at {self._endpoint()} after {self.max_retries + 1} "
                    f"attempts ({self.max_retries} SDK retries): {type(cause).__name__}: {cause}; check the "
                    f"network, proxy settings or model.base_url"), transient=True) from exc
            return self._to_turn(message, billed_before)
        raise AssertionError("unreachable")  # pragma: no cover

    def _stream(self, params: dict[str, Any]) -> anthropic.types.Message:
        stream = None
        try:
            with self._client.messages.stream(**params) as stream:
                message = stream.get_final_message()
        except _httpx.TransportError as exc:
            # Raised while reading the body (request-level transport errors reach us wrapped in
            # APIConnectionError, after the SDK's retries): the stream broke after it started.
            raise _StreamBroken(f"{type(exc).__name__}: {exc}", _billed_so_far(stream)) from exc
        except anthropic.APIStatusError as exc:
            error_type, error_message = _api_error(exc)
            if exc.status_code < 400 and error_type in _TRANSIENT_STREAM_ERRORS:  # an SSE error event
                raise _StreamBroken(f"error event {error_type}: {error_message}", _billed_so_far(stream)) from exc
            raise
        except ValueError as exc:
            # The SDK parses tool input as it streams in and raises a plain ValueError, with this
            # wording (anthropic 2.14, lib/streaming/_messages.py), when it is not JSON.
            if "tool parameter JSON" not in str(exc):
                raise
            raise _ToolInputNotJson(_clip(str(exc).replace(" Please retry your request or adjust your prompt.", ""),
                                          300), _billed_so_far(stream)) from exc
        if message.stop_reason is None:
            raise _StreamBroken("the stream ended before message_stop", _usage(message.usage))
        return message

    def _to_turn(self, message: Any, billed_before: Usage | None = None) -> ModelTurn:
        usage = _usage(message.usage) + (billed_before or Usage())
        model = message.model or self.config.name
        cost: float | None
        if self.config.prices is not None:
            cost = configured_cost(self.config.prices, usage)
        else:
            cost = turn_cost(model, usage)
            if cost is None and model != self.config.name:
                cost = turn_cost(self.config.name, usage)
        return ModelTurn(content=[_block_dict(b) for b in message.content], stop_reason=message.stop_reason,
                         model=model, usage=usage, cost_usd=cost)

    # --- errors -------------------------------------------------------------------------------

    def _status_error(self, exc: anthropic.APIStatusError) -> ModelError:
        status = exc.status_code
        error_type, api_message = _api_error(exc)
        what = f"{status} {error_type}: {api_message}" if status >= 400 else f"{error_type}: {api_message}"
        name = self.config.name
        if status == 400 and (too_long := _PROMPT_TOO_LONG.search(api_message)):
            tokens, limit = (int(n) if n else None for n in too_long.groups())
            return ContextWindowExceeded(self._scrub(f"the conversation is too long for {name!r} ({what})"),
                                         tokens=tokens, limit=limit)
        if status == 401:
            text, transient = f"the Anthropic API rejected the API key ({what}); {_KEY_HINT}", False
        elif status == 403:
            text, transient = (f"the API key is not allowed to do this ({what}); check model.name ({name!r}) "
                               f"and the permissions of the key's workspace; {_KEY_HINT}"), False
        elif status == 404:
            text, transient = (f"the Anthropic API does not know the model or endpoint ({what}); check model.name "
                               f"({name!r}; current models include 'claude-sonnet-5-5') and model.base_url"), False
        elif status == 402:
            text, transient = f"the Anthropic account cannot be billed ({what}); check the plan and credits", False
        elif status == 413:
            text, transient = (f"the request is too large for the Anthropic API ({what}); the conversation or "
                               f"a tool result is too long"), False
        elif status in _SDK_RETRIED_STATUSES or status >= 500:
            tries = _attempts(exc, self.max_retries)
            text, transient = (f"the Anthropic API kept failing ({what}) after {tries} attempts (the SDK retried "
                               f"{tries - 1} times with backoff, honouring retry-after); try again later"), True
        else:
            text, transient = (f"the Anthropic API rejected the request ({what}); check model.name ({name!r}) "
                               f"and model.max_tokens ({self.config.max_tokens})"), False
        return ModelError(self._scrub(text), transient=transient)

    def _endpoint(self) -> str:
        return str(self._client.base_url).rstrip("/")

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "[api key]") if self._secret else text


# --- helpers ----------------------------------------------------------------------------------


def with_message_breakpoint(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of ``messages`` with ``cache_control`` on the last cacheable block of the latest message.

    Caching prefixes: tools, system, then messages; a breakpoint on the newest block makes the next
    turn read everything before it from the cache. Any other ``cache_control`` in the messages is
    dropped, so the request never exceeds the API's 4 breakpoints. The input is not modified.
    """
    copied = [{**m, "content": _blocks_without_cache_control(m.get("content"))} for m in messages]
    if not copied:
        return copied
    last = copied[-1]
    if isinstance(last["content"], str):
        if last["content"]:
            last["content"] = [{"type": "text", "text": last["content"], "cache_control": EPHEMERAL}]
        return copied
    for block in reversed(last["content"] or []):
        if block.get("type") in _CACHEABLE_BLOCKS and not (block.get("type") == "text" and not block.get("text")):
            block["cache_control"] = EPHEMERAL
            break
    return copied


def without_blank_text(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` as the API accepts them; it refuses (400, for good) text blocks that are empty or
    only whitespace, such as the "\n\n" Claude often writes before a tool call, and a final assistant
    message that ends in whitespace. Transcripts of earlier runs may hold both. The input is not modified."""
    cleaned = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            kept = [b for b in content
                    if not (isinstance(b, dict) and b.get("type") == "text" and not str(b.get("text", "")).strip())]
            message = {**message, "content": kept or [{"type": "text", "text": NO_TEXT}]}
        cleaned.append(message)
    last = cleaned[-1] if cleaned else {}
    if last.get("role") == "assistant" and isinstance(last["content"], list) \
            and isinstance(last["content"][-1], dict) and last["content"][-1].get("type") == "text":
        end = last["content"][-1]
        cleaned[-1] = {**last, "content": [*last["content"][:-1], {**end, "text": end["text"].rstrip()}]}
    return cleaned


def _blocks_without_cache_control(content: Any) -> Any:
    if isinstance(content, list):
        return [_without_cache_control(b) if isinstance(b, dict) else b for b in content]
    return copy.deepcopy(content)


def _without_cache_control(block: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in block.items() if k != "cache_control"}


def _usage(u: Any) -> Usage:
    return Usage(input_tokens=u.input_tokens or 0, output_tokens=u.output_tokens or 0,
                 cache_read_input_tokens=u.cache_read_input_tokens or 0,
                 cache_creation_input_tokens=u.cache_creation_input_tokens or 0)


def _billed_so_far(stream: Any) -> Usage | None:
    """The usage of a response that broke mid-stream, as far as it arrived (its message_start
    reports the whole input); None when nothing arrived."""
    try:
        snapshot = stream.current_message_snapshot if stream is not None else None
    except AssertionError:  # the SDK asserts a snapshot exists: no message_start arrived
        return None
    return _usage(snapshot.usage) if snapshot is not None and snapshot.usage is not None else None


def _block_dict(block: Any) -> dict[str, Any]:
    data = block.model_dump(mode="json", exclude_none=True)
    data.pop("parsed_output", None)  # an SDK-side field of streamed text blocks; the API would reject it
    return data


def _api_error(exc: anthropic.APIStatusError) -> tuple[str, str]:
    """The API's error type and message, from its JSON body when there is one."""
    body = exc.body
    if isinstance(body, dict):
        error = body["error"] if isinstance(body.get("error"), dict) else body
        return str(error.get("type") or "error"), str(error.get("message") or exc.message)
    return "error", str(body or exc.message)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _attempts(exc: anthropic.APIStatusError, max_retries: int) -> int:
    """How many requests were sent: the SDK numbers its retries in a request header."""
    try:
        return int(exc.response.request.headers["x-stainless-retry-count"]) + 1
    except (KeyError, ValueError, AttributeError, RuntimeError):
        return max_retries + 1
