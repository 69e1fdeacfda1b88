"""Several servers of one model as one pool, load-balanced by litellm's Router.

`agent.models` entries that name the same model with the same sampling settings on different
`api_base`s are one pool: each request goes to one of its servers (litellm's Router picks, by
`weight`). A server that stops answering is taken out of rotation and the session goes on on the
others, with one notice naming it (`ServerDown`); it is tried again after `COOLDOWN_S` and, when it
answers, a notice says so (`ServerBack`).

Who retries what (one retry layer): the Router makes exactly one attempt per request
(`num_retries=0`, no fallbacks: litellm's retries stay off, as for a single server). lamsim's own
loop in `ModelAgent` retries, with its back-off and the model's `retries` (docs/models.md,
"Faults"); each attempt goes through the Router, which picks among the servers in rotation. A
failure that takes a server out of rotation is retried at once on another and is not counted
against `retries`. The Router's part is choosing a server and keeping the out-of-rotation list (its
cooldowns); lamsim decides when a server is out (the Router's own rule misses refused connections
in litellm 1.110.2: `_is_cooldown_required` skips any error whose text has "APIConnectionError",
BerriAI/litellm#27362, fixed after this release by #27610).

The embedded model is never pooled: it is one server that lamsim runs itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lamsim_tui.agents.base import ModelFailure
from lamsim_tui.agents.llm import Endpoint, classify, load_litellm
from lamsim_tui.events import Event, ServerBack, ServerDown

COOLDOWN_S = 30.0  # a server out of rotation is tried again after this long
# Consecutive failures of these kinds after which a server is out of rotation. A refused connection
# or an unknown model is the server itself; a time-out, a broken stream or a 5xx may be one request.
OUT_AFTER = {"model.unreachable": 1, "model.not_found": 1, "model.auth": 1, "model.bad_response": 2,
             "model.timeout": 2, "model.server_error": 3}
SERVER_FAILURES = frozenset(OUT_AFTER)  # failures that say something about the server, not the request


@dataclass
class Server:
    id: str
    endpoint: Endpoint
    weight: float
    failures: int = 0
    down: bool = False
    reason: str = ""
    down_since: float = 0.0  # time.monotonic() when it was taken out


class ServerPool:
    """One model on several servers. `route` is what `stream_completion` calls for each request."""

    def __init__(self, endpoints: list[Endpoint], weights: list[float], *, name: str = "lamsim-pool",
                 cooldown_s: float | None = None):
        self.name = name
        self.cooldown_s = COOLDOWN_S if cooldown_s is None else cooldown_s
        self.servers = [Server(f"{name}-{i}", e, w) for i, (e, w) in enumerate(zip(endpoints, weights, strict=True))]
        self._by_id = {s.id: s for s in self.servers}
        self._by_base = {s.endpoint.api_base: s for s in self.servers}
        self.router: Any = None
        self.model = endpoints[0].model

    @property
    def api_bases(self) -> list[str]:
        return [s.endpoint.api_base or "" for s in self.servers]

    def start(self) -> None:
        """Build the Router (litellm must be importable; call from the factory's start)."""
        litellm = load_litellm()
        model_list = []
        for server in self.servers:
            params: dict[str, Any] = {"model": server.endpoint.model, "api_base": server.endpoint.api_base,
                                      "weight": max(server.weight, 0.0) or 1.0}
            key = server.endpoint.api_key()
            if key:
                params["api_key"] = key  # held by the Router in memory for the session; never written anywhere
            model_list.append({"model_name": self.name, "litellm_params": params, "model_info": {"id": server.id}})
        self.router = litellm.Router(model_list=model_list, num_retries=0, routing_strategy="simple-shuffle",
                                     cooldown_time=self.cooldown_s, set_verbose=False)

    def close(self) -> None:
        router, self.router = self.router, None
        if router is not None:
            try:
                router.retire()
            except Exception:  # noqa: BLE001 - releasing the Router's registrations must never fail a session
                pass

    # ----- one request ---------------------------------------------------------------------------
    async def route(self, kwargs: dict) -> tuple[Any, Endpoint]:
        """One attempt through the Router: (the stream, the endpoint of the server that answered).

        Raises `ModelFailure` naming the server that failed (or all of them when none is in rotation).
        """
        load_litellm()
        from litellm.types.router import RouterRateLimitError

        sent = {k: v for k, v in kwargs.items() if k not in ("model", "api_base", "api_key")}
        try:
            response = await self.router.acompletion(model=self.name, **sent)
        except RouterRateLimitError:
            raise self._none_in_rotation() from None
        except ModelFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - every provider error is classified, naming the server
            server = self._by_id.get(str(getattr(exc, "failed_deployment_id", "") or ""))
            failure = classify(exc, server.endpoint if server else self.servers[0].endpoint)
            if server is None:
                failure.details["api_base"] = ", ".join(self.api_bases)
            raise failure from None
        hidden = getattr(response, "_hidden_params", None) or {}
        server = self._by_id.get(str(hidden.get("model_id") or "")) or self._by_base.get(hidden.get("api_base"))
        return response, (server or self.servers[0]).endpoint

    def _none_in_rotation(self) -> ModelFailure:
        reasons = "; ".join(f"{s.endpoint.api_base}: {s.reason or 'failing'}" for s in self.servers)
        return ModelFailure("model.unreachable",
                            f"no server of {self.model} is answering ({reasons}); each is tried again "
                            f"{self.cooldown_s:g} s after it failed",
                            transient=True, details={"model": self.model, "api_base": ", ".join(self.api_bases)})

    # ----- what the agent reports back -------------------------------------------------------------
    def in_rotation(self) -> int:
        return sum(1 for s in self.servers if not s.down)

    def failed(self, failure: ModelFailure, emit: Callable[[Event], None]) -> bool:
        """A request failed. Takes its server out of rotation when it is the server's fault; returns True
        when the request should go at once to another server (without counting as a retry)."""
        server = self._by_base.get(failure.details.get("api_base"))
        if server is None or failure.code not in SERVER_FAILURES:
            return False
        server.failures += 1
        if server.failures < OUT_AFTER[failure.code] and not server.down:
            return False
        if self.router is not None:
            self.router.health().cooldowns.add_deployment_to_cooldown(
                server.id, RuntimeError(failure.message), int(failure.details.get("status") or 503), self.cooldown_s)
        if not server.down:
            server.down = True
            server.down_since = time.monotonic()
            server.reason = _reason(failure)
            emit(ServerDown(
                message=(f"model server {server.endpoint.api_base} ({self.model}) is not answering: {server.reason}. "
                         f"It is out of rotation; the session goes on on {self.in_rotation()} other server(s) "
                         f"and tries it again in {self.cooldown_s:g} s."),
                model=self.model, api_base=server.endpoint.api_base or "", reason=server.reason,
                servers_left=self.in_rotation()))
        return self.in_rotation() > 0

    def succeeded(self, endpoint: Endpoint, emit: Callable[[Event], None], started: float) -> None:
        """A request sent at `started` (time.monotonic()) was answered. A server out of rotation is back
        only for a request sent after it was taken out (one sent before may finish after that)."""
        server = self._by_base.get(endpoint.api_base)
        if server is None:
            return
        if server.down and started <= server.down_since:
            return
        server.failures = 0
        if server.down:
            server.down = False
            server.reason = ""
            emit(ServerBack(message=f"model server {server.endpoint.api_base} ({self.model}) answers again: "
                                    "back in rotation.", model=self.model, api_base=server.endpoint.api_base or ""))


def _reason(failure: ModelFailure) -> str:
    """Why a server is out, in lamsim's words (the server's own error text is not repeated here)."""
    status = failure.details.get("status")
    return {"model.unreachable": "connections to it are refused or break",
            "model.timeout": "it did not answer in time", "model.bad_response": "its replies break off",
            "model.server_error": f"it fails with HTTP {status or '5xx'}", "model.not_found": "it does not serve this model",
            "model.auth": "it refused the credentials"}.get(failure.code, failure.code)


def pool_key(settings: Any) -> tuple:
    """Entries of `agent.models` with the same key and different `api_base`s are one pool."""
    return (settings.model, settings.temperature, settings.top_p, settings.max_tokens, settings.seed,
            tuple(settings.stop), settings.constrain_with, settings.timeout, settings.retries)


__all__ = ["COOLDOWN_S", "ServerPool", "pool_key"]
