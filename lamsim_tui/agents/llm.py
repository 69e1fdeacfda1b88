"""One streamed chat completion through litellm, with model faults mapped to `ModelFailure`.

litellm is imported lazily (it takes seconds), with its cost-map download and telemetry off, so
importing lamsim or opening the app never waits for it and never reaches the network.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from lamsim_tui.agents.base import ModelFailure

_litellm: Any = None
_import_lock = threading.Lock()

#: A reply is cut off (and the step fails) past `reply_limit` characters: this many per token of
#: `max_tokens`, and at least `MIN_REPLY_CHARS` — far beyond any real reply, so raw model output
#: kept in the store stays bounded even when a server ignores `max_tokens`.
CHARS_PER_TOKEN_LIMIT = 32
MIN_REPLY_CHARS = 16_000
POOL_DEADLINE_GRACE_S = 1.0  # see within_deadline


def load_litellm() -> Any:
    """Import litellm once, configured to stay on this machine. Safe to call from a thread."""
    global _litellm
    if _litellm is not None:
        return _litellm
    with _import_lock:
        if _litellm is None:
            # Before import: litellm otherwise downloads a price list from the internet on import.
            os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
            os.environ.setdefault("LITELLM_TELEMETRY", "False")
            os.environ.setdefault("LITELLM_LOG", "ERROR")
            import warnings

            # litellm builds pydantic schemas lazily and pydantic warns about them: not the user's concern.
            warnings.filterwarnings("ignore", message=r".*(is|are) using the `ReadOnly` qualifier", category=UserWarning)
            import litellm

            litellm.telemetry = False
            litellm.suppress_debug_info = True
            litellm.turn_off_message_logging = True  # no prompts or keys in litellm's own logs
            litellm.set_verbose = False
            litellm.callbacks = []
            litellm.success_callback = []
            litellm.failure_callback = []
            _litellm = litellm
    return _litellm


def is_local(api_base: str | None, model: str) -> bool:
    """A server on this machine (cost 0); Ollama without api_base defaults to localhost."""
    if api_base is None:
        return model.startswith(("ollama/", "ollama_chat/"))
    host = urlparse(api_base).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


@dataclass
class Completion:
    text: str = ""
    tool_calls: list[dict] = field(default_factory=list)  # OpenAI shape, arguments as strings
    finish_reason: str | None = None
    usage: dict = field(default_factory=dict)
    ttft_s: float | None = None
    latency_s: float = 0.0
    chunks: int = 0
    content_type: str | None = None  # of the HTTP response, where known


@dataclass(frozen=True)
class Endpoint:
    """What one request needs to know about where it goes (the key is read, never stored here)."""

    model: str
    api_base: str | None
    api_key_env: str | None
    params: dict  # temperature, top_p, max_tokens, seed, stop
    timeout: float

    def public(self) -> dict:
        return {"model": self.model, "api_base": self.api_base}

    def api_key(self) -> str | None:
        if self.api_key_env:
            return os.environ.get(self.api_key_env)
        if self.api_base and self.model.startswith(("openai/", "text-completion-openai/", "hosted_vllm/",
                                                    "lm_studio/")):
            return "no-key"  # local OpenAI-compatible servers ignore it; the client insists on one
        return None


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    try:
        return int(status) if status is not None else None
    except (TypeError, ValueError):
        return None


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    text = " ".join(text.split())
    for prefix in ("litellm.", "OpenAIException - ", "APIConnectionError: ", "Timeout: "):
        text = text.replace(prefix, "")
    return text[:300]


def _chain(exc: BaseException, limit: int = 8) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < limit and current not in seen:
        seen.append(current)
        current = (getattr(current, "original_exception", None) or current.__cause__ or current.__context__)
    return seen


def _chain_text(exc: BaseException) -> str:
    return " ".join(f"{type(e).__name__} {e}" for e in _chain(exc))


def _connection_error(exc: BaseException) -> bool:
    """litellm reports a refused connection as an HTTP 500 "Connection error.": look underneath."""
    if "connection error" in str(exc).lower():
        return True
    return any(isinstance(e, ConnectionError) or "ConnectError" in type(e).__name__
               or "ClientConnector" in type(e).__name__ for e in _chain(exc)[1:])


def classify(exc: BaseException, endpoint: Endpoint, received: int = 0) -> ModelFailure:
    """Map a litellm/openai/httpx exception to a stable `model.*` failure (``received``: characters
    of the reply read before it)."""
    litellm = load_litellm()
    errors = litellm.exceptions
    where = f"{endpoint.model} at {endpoint.api_base or 'its default address'}"
    status = _status(exc)
    detail = _short(exc)
    details = {**endpoint.public(), "status": status, "error": type(exc).__name__}

    def failure(code: str, message: str, transient: bool) -> ModelFailure:
        return ModelFailure(code, message, transient=transient, details=details)

    if isinstance(exc, errors.ContextWindowExceededError) or "context length" in detail.lower() \
            or "context window" in detail.lower() or "maximum context" in detail.lower():
        return failure("model.context_length", f"the conversation no longer fits the context of {where}: {detail}",
                       False)
    if isinstance(exc, (errors.Timeout, asyncio.TimeoutError, TimeoutError)):
        return failure("model.timeout", f"{where} did not answer within {endpoint.timeout:g} s", True)
    if isinstance(exc, errors.RateLimitError) or status == 429:
        return failure("model.rate_limited", f"{where} is rate limiting requests: {detail}", True)
    if isinstance(exc, errors.AuthenticationError) or status in (401, 403):
        return failure("model.auth", f"{where} refused the credentials"
                       + (f" from ${endpoint.api_key_env}" if endpoint.api_key_env else "") + ".", False)
    if isinstance(exc, errors.NotFoundError) or status == 404:
        return failure("model.not_found", f"{where} does not know this model (or the api_base is wrong): {detail}",
                       False)
    if "repeating the same chunk" in detail.lower():  # litellm's guard against an endless stream
        return failure("model.bad_response", f"{where} sent the same piece of text over and over ({received:,} "
                       f"characters so far, max_tokens {endpoint.params.get('max_tokens')}): a looping model, or "
                       "a server that ignores max_tokens", True)
    if isinstance(exc, getattr(errors, "MidStreamFallbackError", ())):
        if "finish_reason" in detail:
            return failure("model.bad_response", f"the stream from {where} ended before the reply was complete",
                           True)
        return failure("model.bad_response", f"the stream from {where} could not be read: {detail}", True)
    if isinstance(exc, errors.APIConnectionError) or _connection_error(exc):
        lowered = detail.lower() + " " + _chain_text(exc).lower()
        if any(w in lowered for w in ("connecterror", "clientconnector", "connectionrefused", "connect call failed",
                                      "refused", "unreachable", "name or service", "no route", "nodename")):
            return failure("model.unreachable", f"cannot reach {where}: {detail}", True)
        return failure("model.bad_response", f"the connection to {where} broke: {detail}", True)
    if isinstance(exc, (errors.InternalServerError, errors.ServiceUnavailableError, errors.BadGatewayError)) \
            or (status is not None and status >= 500):
        return failure("model.server_error", f"{where} failed (HTTP {status or '5xx'}): {detail}", True)
    if isinstance(exc, errors.BadRequestError) or status == 400 or status == 422:
        return failure("model.bad_request", f"{where} rejected the request: {detail}", False)
    if isinstance(exc, errors.APIError) or status is not None:
        return failure("model.bad_response", f"{where} sent a response that could not be read: {detail}", True)
    return failure("model.bad_response", f"unexpected error talking to {where}: {type(exc).__name__}: {detail}",
                   True)


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _usage_dict(usage: Any) -> dict:
    out: dict = {}
    for key in ("prompt_tokens", "completion_tokens"):
        value = _get(usage, key)
        if isinstance(value, int):
            out[key] = value
    details = _get(usage, "prompt_tokens_details")
    cached = _get(details, "cached_tokens")
    if isinstance(cached, int):
        out["cached_tokens"] = cached
    cached = _get(usage, "cache_read_input_tokens")
    if isinstance(cached, int) and cached and "cached_tokens" not in out:
        out["cached_tokens"] = cached
    return out


async def stream_completion(
    endpoint: Endpoint,
    messages: list[dict],
    *,
    on_text: Callable[[str], None],
    tools: list[dict] | None = None,
    response_format: dict | None = None,
    seed: int | None = None,
    route: Callable[[dict], Any] | None = None,
) -> Completion:
    """Stream one completion; `on_text` receives text and tool-call argument pieces as they come.

    Raises `ModelFailure` for every fault; a cancelled call closes its stream before it returns.
    `route(kwargs)`, for a pool of servers (`agents.routing`), makes the request instead of
    `litellm.acompletion` and returns (stream, endpoint of the server that answered).
    """
    litellm = load_litellm()
    kwargs = _request(endpoint, messages, tools=tools, response_format=response_format, seed=seed, stream=True)

    result = Completion()
    started = time.perf_counter()
    served: list[Endpoint] = []  # the server that answers: of a pool, the Router's choice; named in messages
    await within_deadline(endpoint, result, _read_stream(litellm, kwargs, endpoint, result, on_text, started,
                                                         route, served), served=served if route else None)
    result.latency_s = time.perf_counter() - started
    endpoint = served[-1] if served else endpoint
    if result.finish_reason is None:
        raise ModelFailure(
            "model.bad_response",
            f"the stream from {endpoint.model} at {endpoint.api_base or 'its default address'} ended before "
            "the reply was complete",
            transient=True, details={**endpoint.public(), "error": "truncated stream"},
        )
    if not result.text.strip() and not result.tool_calls:
        not_a_stream = _not_a_stream(result.content_type, endpoint)
        if not_a_stream is not None:
            raise not_a_stream
    if "completion_tokens" not in result.usage and result.chunks:
        result.usage["completion_tokens_estimated"] = result.chunks
    return result


def reply_limit(endpoint: Endpoint) -> int:
    """The most characters one reply may have: far beyond what `max_tokens` allows, so only a
    server that ignores `max_tokens` (or streams without end) reaches it."""
    max_tokens = endpoint.params.get("max_tokens") or 0
    return max(MIN_REPLY_CHARS, CHARS_PER_TOKEN_LIMIT * int(max_tokens))


async def within_deadline(endpoint: Endpoint, result: Completion, work: Awaitable[Any],
                          served: list[Endpoint] | None = None) -> Any:
    """`endpoint.timeout` is a deadline for the whole request: connecting, the first byte, and
    the last. A server that trickles (a header byte a second, SSE comments, one character a
    second) cannot hold a request past it; inactivity timeouts alone would reset on every byte.

    Kept apart from the request itself, so any way of sending one (litellm's `acompletion`, a
    Router) runs under the same deadline. Raises `ModelFailure("model.timeout")`.

    `served`, for a pool: the server that answered, once one has. The failure names that server
    (so the pool takes the right one out of rotation), or no server when none had answered yet.
    """
    # A pool's request gets a moment more: a server that takes it and never answers then fails in the
    # Router first (its own time-out, which names the server), not here, where which one is unknown.
    grace = POOL_DEADLINE_GRACE_S if served is not None else 0.0
    try:
        async with asyncio.timeout(endpoint.timeout + grace):
            return await work
    except TimeoutError:
        details = {**endpoint.public(), "error": "deadline"}
        if served:
            endpoint = served[-1]
            details.update(endpoint.public())
            where = f"{endpoint.model} at {endpoint.api_base or 'its default address'}"
        elif served is not None:
            details["api_base"] = None  # which server of the pool the Router chose is not known yet
            where = f"{endpoint.model} (a server of its pool)"
        else:
            where = f"{endpoint.model} at {endpoint.api_base or 'its default address'}"
        if result.chunks:
            message = (f"{where} did not finish its reply within {endpoint.timeout:g} s (timeout): it had sent "
                       f"{result.chunks} piece(s), {len(result.text)} characters, so far")
        else:
            message = f"{where} did not answer within {endpoint.timeout:g} s (timeout)"
        raise ModelFailure("model.timeout", message, transient=True, details=details) from None


def _not_a_stream(content_type: str | None, endpoint: Endpoint) -> ModelFailure | None:
    """An empty reply whose body was not an event stream: the server answered something else."""
    if not content_type:
        return None
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("text/event-stream", "application/x-ndjson", ""):
        return None
    where = f"{endpoint.model} at {endpoint.api_base or 'its default address'}"
    details = {**endpoint.public(), "error": f"content-type {kind}"}
    if kind == "text/html":
        return ModelFailure("model.bad_response", f"{where} answered with a web page (text/html), not the OpenAI "
                            "protocol: is api_base the API's address (it usually ends in /v1)?", details=details)
    if kind == "application/json":
        return ModelFailure("model.bad_response", f"{where} answered with one whole JSON reply although a stream "
                            "was asked for (stream: true): the server does not stream, or this is not its "
                            "chat-completions address", details=details)
    return ModelFailure("model.bad_response", f"{where} answered with {kind}, not an event stream", details=details)


async def _read_stream(litellm: Any, kwargs: dict, endpoint: Endpoint, result: Completion,
                       on_text: Callable[[str], None], started: float,
                       route: Callable[[dict], Any] | None, served: list[Endpoint]) -> None:
    calls: dict[int, dict] = {}
    limit = reply_limit(endpoint)
    response = None
    try:
        if route is None:
            response = await litellm.acompletion(**kwargs)
        else:
            response, endpoint = await route(kwargs)
        served.append(endpoint)
        result.content_type = _content_type(response)
        async for chunk in response:
            result.chunks += 1
            usage = _get(chunk, "usage")
            if usage:
                result.usage.update(_usage_dict(usage))
            for choice in _get(chunk, "choices", None) or []:
                delta = _get(choice, "delta")
                piece = _get(delta, "content")
                if piece:
                    if result.ttft_s is None:
                        result.ttft_s = time.perf_counter() - started
                    result.text += piece
                    on_text(piece)
                for call in _get(delta, "tool_calls", None) or []:
                    if result.ttft_s is None:
                        result.ttft_s = time.perf_counter() - started
                    index = _get(call, "index", 0) or 0
                    slot = calls.setdefault(index, {"id": "", "type": "function",
                                                    "function": {"name": "", "arguments": ""}})
                    if _get(call, "id"):
                        slot["id"] = _get(call, "id")
                    function = _get(call, "function")
                    name = _get(function, "name")
                    if name:
                        slot["function"]["name"] += name
                        on_text(name + " ")
                    arguments = _get(function, "arguments")
                    if arguments:
                        slot["function"]["arguments"] += arguments
                        on_text(arguments)
                reason = _get(choice, "finish_reason")
                if reason:
                    result.finish_reason = reason
            size = len(result.text) + sum(len(c["function"]["arguments"]) + len(c["function"]["name"])
                                          for c in calls.values())
            if size > limit:
                raise _too_long(endpoint, size, limit)
    except ModelFailure:
        raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # every provider error, broken stream or protocol error
        raise classify(exc, endpoint, received=len(result.text)) from None
    finally:
        result.tool_calls = [calls[i] for i in sorted(calls)]
        if response is not None and hasattr(response, "aclose"):
            try:
                await asyncio.shield(_close(response))
            except BaseException:  # noqa: BLE001 - closing must never mask the real outcome
                pass


def _too_long(endpoint: Endpoint, size: int, limit: int) -> ModelFailure:
    where = f"{endpoint.model} at {endpoint.api_base or 'its default address'}"
    return ModelFailure(
        "model.bad_response",
        f"{where} sent a reply of more than {limit:,} characters ({size:,} so far) although max_tokens is "
        f"{endpoint.params.get('max_tokens')}: the server ignores max_tokens, or streams without end; the reply "
        "was cut off and not kept",
        transient=True, details={**endpoint.public(), "error": "reply too long"})


def _content_type(response: Any) -> str | None:
    """The HTTP Content-Type of a litellm stream, where litellm kept the response headers."""
    hidden = getattr(response, "_hidden_params", None) or getattr(response, "hidden_params", None) or {}
    headers = hidden.get("additional_headers") if isinstance(hidden, dict) else None
    if not isinstance(headers, dict):
        return None
    for key, value in headers.items():
        if str(key).lower().endswith("content-type"):
            return str(value)
    return None


def _request(endpoint: Endpoint, messages: list[dict], *, tools: list[dict] | None, response_format: dict | None,
             seed: int | None, stream: bool) -> dict[str, Any]:
    """litellm's arguments for one request (its own retries off: lamsim retries, see docs/models.md)."""
    kwargs: dict[str, Any] = {
        "model": endpoint.model,
        "messages": messages,
        "stream": stream,
        "timeout": endpoint.timeout,
        "num_retries": 0,
        "max_retries": 0,
        "drop_params": True,
    }
    if stream:
        kwargs["stream_options"] = {"include_usage": True}
    kwargs.update({k: v for k, v in endpoint.params.items() if v is not None and v != []})
    if seed is not None and "seed" not in kwargs:
        kwargs["seed"] = seed
    if endpoint.api_base:
        kwargs["api_base"] = endpoint.api_base
    key = endpoint.api_key()
    if key:
        kwargs["api_key"] = key
    if tools:
        kwargs["tools"] = tools
    if response_format:
        kwargs["response_format"] = response_format
    return kwargs


async def complete_whole(
    endpoint: Endpoint,
    messages: list[dict],
    *,
    on_text: Callable[[str], None],
    tools: list[dict] | None = None,
    response_format: dict | None = None,
    seed: int | None = None,
    route: Callable[[dict], Any] | None = None,
) -> Completion:
    """One completion asked for whole, not streamed: what a headless run asks for, nobody watching its
    tokens. litellm spends about a third of the CPU on it that it spends on a stream (more with longer
    replies: a stream costs per piece; see docs/scaling.md), so one process drives more episodes at once.
    `on_text` gets the reply once; faults map to `ModelFailure` as in `stream_completion`.
    """
    litellm = load_litellm()
    kwargs = _request(endpoint, messages, tools=tools, response_format=response_format, seed=seed, stream=False)
    started = time.perf_counter()

    async def ask() -> tuple[Any, Endpoint]:
        try:
            if route is None:
                return await litellm.acompletion(**kwargs), endpoint
            return await route(kwargs)
        except ModelFailure:
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every provider error or protocol error
            raise classify(exc, endpoint) from None

    result = Completion()
    response, endpoint = await within_deadline(endpoint, result, ask(), served=[] if route else None)
    result.latency_s, result.chunks = time.perf_counter() - started, 1
    choices = _get(response, "choices", None) or []
    if not choices:
        raise ModelFailure("model.bad_response", f"{endpoint.model} at {endpoint.api_base or 'its default address'} "
                           "sent a reply without choices", transient=True,
                           details={**endpoint.public(), "error": "no choices"})
    message = _get(choices[0], "message")
    result.finish_reason = _get(choices[0], "finish_reason") or "stop"
    result.text = _get(message, "content") or ""
    for call in _get(message, "tool_calls", None) or []:
        function = _get(call, "function")
        arguments = _get(function, "arguments") or ""
        result.tool_calls.append({"id": _get(call, "id") or "", "type": "function",
                                  "function": {"name": _get(function, "name") or "",
                                               "arguments": arguments if isinstance(arguments, str)
                                               else json.dumps(arguments, ensure_ascii=False)}})
    result.usage.update(_usage_dict(_get(response, "usage")))
    limit = reply_limit(endpoint)
    size = len(result.text) + sum(len(c["function"]["arguments"]) + len(c["function"]["name"])
                                  for c in result.tool_calls)
    if size > limit:
        raise _too_long(endpoint, size, limit)
    if result.text:
        on_text(result.text)
    for call in result.tool_calls:
        on_text(call["function"]["name"] + " " + call["function"]["arguments"])
    return result


async def _close(response: Any) -> None:
    try:
        await asyncio.wait_for(response.aclose(), 5)
    except Exception:  # noqa: BLE001
        pass


def cost_usd(endpoint: Endpoint, usage: dict) -> float | None:
    """What litellm knows of the price; 0 for a server on this machine; None when unknown."""
    if is_local(endpoint.api_base, endpoint.model):
        return 0.0
    litellm = load_litellm()
    try:
        prompt, completion = litellm.cost_per_token(
            model=endpoint.model, prompt_tokens=usage.get("prompt_tokens", 0) or 0,
            completion_tokens=usage.get("completion_tokens", 0) or 0)
        return float(prompt + completion)
    except Exception:  # noqa: BLE001 - unknown model: no price
        return None
