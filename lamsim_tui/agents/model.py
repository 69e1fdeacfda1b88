"""Model agents: a real LLM proposes each step, through litellm, in the JSON or native format.

`ModelAgentFactory(session, pack, embedded=False)` serves `agent: {kind: model, models: [...]}`
(any server litellm reaches) and `kind: embedded` (a llama.cpp server that lamsim starts on
127.0.0.1 for the bundled model). Per episode it picks a model by weight from the episode seed.
Entries that name the same model with the same settings on several `api_base`s are one choice, a
pool of servers behind litellm's Router (`agents.routing`): each request goes to one of them.

Failures the agent cannot recover from raise `ModelFailure(code, message, transient, details)`;
`details` holds `model`, `api_base`, `attempts` and, where known, the HTTP `status` — never a key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lamsim_tui.agents import prompts
from lamsim_tui.agents.base import Agent, AgentFactory, AgentTurn, EpisodeView, ModelFailure
from lamsim_tui.agents.llm import Endpoint, complete_whole, cost_usd, load_litellm, stream_completion
from lamsim_tui.agents.routing import ServerPool, pool_key
from lamsim_tui.errors import ConfigError
from lamsim_tui.events import TextDelta
from lamsim_tui.simulator.actions import Parsed, parse_json_action, parse_native_call
from lamsim_tui.simulator.feedback import finding

if TYPE_CHECKING:
    from lamsim_tui.agents.embedded.server import EmbeddedServer
    from lamsim_tui.events import Event
    from lamsim_tui.packs import Pack
    from lamsim_tui.record import Demonstrations, Task
    from lamsim_tui.session.config import ModelSettings, Session

EMBEDDED_MODEL = "openai/local-agent"
BACKOFF_S = 0.5
BACKOFF_MAX_S = 8.0
EMPTY_RETRIES = 1  # an empty reply is asked for again once before the episode ends


def _endpoint(m: ModelSettings, api_base: str | None = None) -> Endpoint:
    return Endpoint(
        model=m.model, api_base=api_base or m.api_base, api_key_env=m.api_key_env, timeout=m.timeout,
        params={"temperature": m.temperature, "top_p": m.top_p, "max_tokens": m.max_tokens, "seed": m.seed,
                "stop": list(m.stop) or None},
    )


def _choices(models: list[ModelSettings]) -> list[tuple[ModelSettings, float, list[int]]]:
    """What an episode chooses among, by weight: (settings, weight, indexes of the `models` entries).

    Entries with the same `pool_key` and different `api_base`s are one choice (a pool of servers);
    any other entry is a choice of its own, so sessions without pools choose exactly as before.
    """
    groups: dict[tuple, list[int]] = {}
    for i, m in enumerate(models):
        groups.setdefault(pool_key(m), []).append(i)
    out: list[tuple[ModelSettings, float, list[int]]] = []
    seen: set[tuple] = set()
    for i, m in enumerate(models):
        members = groups[pool_key(m)]
        if len({models[j].api_base for j in members}) < 2:
            out.append((m, max(m.weight, 0.0), [i]))  # one server (several entries of it: as before)
        elif pool_key(m) not in seen:
            seen.add(pool_key(m))
            out.append((m, sum(max(models[j].weight, 0.0) for j in members), members))
    return out


class ModelAgentFactory(AgentFactory):
    """Creates one `ModelAgent` per episode; owns the embedded server when there is one."""

    def __init__(self, session: Session, pack: Pack, *, embedded: bool = False, speculative: bool = False):
        self.session = session
        self.speculative = speculative  # the embedded server's prompt-lookup decoding (bench/model.py; off)
        self.pack = pack
        self.embedded = embedded
        settings = session.agent
        self.settings = settings
        self.format = settings.format
        self.constrained = settings.constrained if settings.constrained is not None else embedded
        self.server: EmbeddedServer | None = None
        self.embedded_info: dict = {}
        self._models: list[ModelSettings] = list(settings.models)
        self._styles: list[str] = [m.constrain_with for m in self._models]
        self._endpoints: list[Endpoint] = []
        self._retries: list[int] = [m.retries for m in self._models]
        self._weights: list[float] = [max(m.weight, 0.0) for m in self._models]
        self._pools: list[ServerPool | None] = []
        if not embedded and not self._models:
            raise ConfigError("`agent: {kind: model}` needs at least one entry under `models`",
                              where="session setting agent.models", hint="see docs/models.md for one-line examples")
        tools = list(pack.tools.values())
        self.system_prompt = prompts.agent_system_prompt(pack, session, self.format)
        self._tools_native = prompts.native_tools(tools) if self.format == "native" else None
        self._schema = prompts.action_schema(tools) if self.constrained and self.format == "json" else None
        self._started = False
        # The embedded server computes one reply at a time: requests wait here, in order, so that
        # each step's server figures are its own.
        self._request_lock: asyncio.Lock | None = None

    # ----- AgentFactory ----------------------------------------------------------------------

    @property
    def max_concurrency(self) -> int | None:
        """The embedded server runs one request at a time and caches one conversation prefix:
        episodes interleaved on it re-read their whole history at every step."""
        return 1 if self.embedded else None

    def describe(self) -> dict:
        info = {
            "kind": "embedded" if self.embedded else "model",
            "format": self.format,
            "constrained": bool(self.constrained),
            "system_prompt_sha256": hashlib.sha256(self.system_prompt.encode()).hexdigest()[:16],
        }
        if self.embedded:
            info["embedded_model"] = self.embedded_info or {"name": self.settings.embedded_model}
        return info

    async def start(self) -> None:
        if self._started:
            return
        importing = asyncio.create_task(asyncio.to_thread(load_litellm))
        try:
            if self.embedded:
                await self._start_embedded()
            else:
                for i, m in enumerate(self._models):
                    if m.api_key_env and m.api_key_env not in os.environ:
                        raise ConfigError(
                            f"the environment variable {m.api_key_env} (the API key of {m.model}) is not set",
                            where=f"session setting agent.models[{i}].api_key_env",
                            hint=f"export {m.api_key_env}=... before starting lamsim",
                        )
                await importing
                self._choose_among(self._models)
            await importing
        except BaseException:
            importing.cancel()
            await self.aclose()
            raise
        self._started = True

    def _choose_among(self, models: list[ModelSettings]) -> None:
        """Endpoints (and server pools) of what episodes choose among."""
        chosen = _choices(models)
        self._models = [m for m, _w, _members in chosen]
        self._weights = [w for _m, w, _members in chosen]
        self._styles = [m.constrain_with for m in self._models]
        self._retries = [m.retries for m in self._models]
        self._endpoints, self._pools = [], []
        for n, (m, _w, members) in enumerate(chosen):
            if len(members) == 1:
                self._endpoints.append(_endpoint(m))
                self._pools.append(None)
                continue
            pool = ServerPool([_endpoint(models[j]) for j in members], [models[j].weight for j in members],
                              name=f"lamsim-pool-{n}")
            pool.start()
            self._endpoints.append(_endpoint(m, api_base=None))  # the pool's requests name no server: the Router does
            self._pools.append(pool)

    async def _start_embedded(self) -> None:
        from lamsim_tui.agents.embedded import server as embedded
        from lamsim_tui.agents.embedded.weights import resolve_gguf

        settings = self.settings
        embedded.check_runtime()
        path, known = await asyncio.to_thread(resolve_gguf, settings.embedded_model)
        self.server = embedded.EmbeddedServer(
            model_path=path, n_ctx=settings.embedded_context,
            threads=settings.embedded_threads or embedded.default_threads(),
            chat_format=known.chat_format if known else None, speculative=self.speculative,
        )
        await self.server.start()
        self.embedded_info = {
            "name": known.name if known else path.name,
            "title": known.title if known else path.name,
            "gguf_sha256": known.gguf_sha256 if known else None,
            "context": settings.embedded_context,
            "threads": self.server.threads,
        }
        if self.speculative:
            self.embedded_info["speculative"] = "prompt-lookup"
        from lamsim_tui.session.config import ModelSettings

        model = ModelSettings(model=EMBEDDED_MODEL, api_base=self.server.api_base,
                              temperature=settings.embedded_temperature, max_tokens=settings.embedded_max_tokens,
                              timeout=settings.embedded_timeout, retries=1, constrain_with="json_object_schema")
        self._models = [model]
        self._styles = [model.constrain_with]
        self._retries = [model.retries]
        self._weights = [1.0]
        self._endpoints = [_endpoint(model)]
        self._pools = [None]  # the embedded model is one server, never routed

    can_paraphrase = True
    uses_demonstrations = True

    def for_episode(self, episode_id: str, seed: int, gold: Task | None = None) -> tuple[ModelAgent, dict]:
        if not self._endpoints:
            raise RuntimeError("ModelAgentFactory.start() must be awaited before for_episode()")
        rng = random.Random(seed)
        weights = self._weights
        index = rng.choices(range(len(self._models)), weights=weights)[0] if sum(weights) > 0 else 0
        m = self._models[index]
        endpoint = self._endpoints[index]
        pool = self._pools[index] if index < len(self._pools) else None
        response_format = (prompts.response_format(self._schema, self._styles[index])
                           if self._schema is not None else None)
        agent = ModelAgent(
            episode_id=episode_id, endpoint=endpoint, fmt=self.format, system_prompt=self.system_prompt,
            tools_native=self._tools_native, response_format=response_format,
            seed=m.seed if m.seed is not None else seed % 2**31, retries=self._retries[index], server=self.server,
            request_lock=self._lock() if self.embedded else None,
            temperature_after_error=self.settings.temperature_after_error, pool=pool, stream=self.stream,
        )
        public = {
            "model": "embedded:" + self.embedded_info.get("name", "") if self.embedded else m.model,
            "api_base": endpoint.api_base if pool is None else ", ".join(pool.api_bases),
            "temperature": m.temperature, "top_p": m.top_p, "max_tokens": m.max_tokens,
            "seed": agent.seed, "stop": list(m.stop),
        }
        if pool is not None:
            public["servers"] = pool.api_bases  # each step's usage says which one answered it (`api_base`)
        return agent, public

    def _lock(self) -> asyncio.Lock:
        if self._request_lock is None:
            self._request_lock = asyncio.Lock()
        return self._request_lock

    async def aclose(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await server.aclose()
        for pool in self._pools:
            if pool is not None:
                pool.close()
        self._pools = [None] * len(self._pools)
        self._started = False

    # ----- query paraphrase ------------------------------------------------------------------

    async def paraphrase(self, query: str, slots: dict[str, Any] | None = None, seed: int = 0) -> str:
        """The model's rewording of `query` for diversity (the query itself when the model fails).

        The caller keeps it only if every slot value survived verbatim; naming the values in the
        request (when `slots` is given) makes that likelier.
        """
        values = [v for v in (_slot_text(v) for v in (slots or {}).values()) if v]
        keep = ("Copy each of these values exactly as written:\n" + "\n".join(f"- {v}" for v in values)
                if values else "Keep every name, id, number and date exactly as written.")
        messages = [
            {"role": "system", "content": "You reword requests. Reply with the reworded request only."},
            {"role": "user", "content": f"Reword this request so it says the same thing in other words. {keep}\n\n"
                                        f"Request: {query}"},
        ]
        if not self._endpoints:
            return query
        base = self._endpoints[0]
        pool = self._pools[0] if self._pools else None
        endpoint = Endpoint(base.model, base.api_base, base.api_key_env,
                            {**base.params, "temperature": 0.7, "max_tokens": 200}, base.timeout)
        try:
            if self.embedded:
                async with self._lock():
                    completion = await stream_completion(endpoint, messages, on_text=lambda _: None, seed=seed)
            else:
                completion = await stream_completion(endpoint, messages, on_text=lambda _: None, seed=seed,
                                                     route=pool.route if pool is not None else None)
        except ModelFailure:
            return query
        text = " ".join(completion.text.strip().strip('"').split())
        return text or query


def _slot_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, (int, float)):
        return str(value)
    return ""


class ModelAgent(Agent):
    """One episode's conversation with one model."""

    def __init__(self, *, episode_id: str, endpoint: Endpoint, fmt: str, system_prompt: str,
                 tools_native: list[dict] | None, response_format: dict | None, seed: int, retries: int,
                 server: EmbeddedServer | None = None, request_lock: asyncio.Lock | None = None,
                 temperature_after_error: float | None = None, pool: ServerPool | None = None,
                 stream: bool = True):
        self.episode_id = episode_id
        self.endpoint = endpoint
        self.format = fmt
        self.system_prompt = system_prompt
        self.tools_native = tools_native
        self.response_format = response_format
        self.seed = seed
        self.retries = retries
        self.server = server
        self.request_lock = request_lock
        self.temperature_after_error = temperature_after_error
        self.pool = pool
        self.complete = stream_completion if stream else complete_whole
        self.closed = False
        self._assistant: list[dict] = []  # this agent's own replies, exactly as sent back later

    def shown_demonstrations(self, episode: EpisodeView) -> Demonstrations | None:
        """The episode's demonstrations rendered in this agent's format (once; recorded with the trajectory)."""
        if self.demonstrations is None and episode.demonstrations is not None:
            self.demonstrations = prompts.demonstrations_shown(episode.demonstrations, self.format)
        return self.demonstrations

    def messages(self, episode: EpisodeView) -> list[dict]:
        """System prompt, task, then each earlier reply and what it was shown — append-only.

        Demonstrations go at the end of the system message (placement `system`) or as turns
        between it and the task (placement `episode`)."""
        system = self.system_prompt
        examples: list[dict] = []
        shown = self.shown_demonstrations(episode)
        if shown is not None and shown.prompt is not None:
            system = f"{system}\n\n{shown.prompt}"
        elif shown is not None:
            examples = [dict(m) for m in shown.messages]
        messages = [{"role": "system", "content": system}, *examples,
                    {"role": "user", "content": prompts.task_message(episode.query)}]
        for i, step in enumerate(episode.steps):
            if i < len(self._assistant):
                assistant = self._assistant[i]
            elif self.format == "native":
                assistant = prompts.native_assistant_message(step.raw)[0]
            else:
                assistant = {"role": "assistant", "content": prompts._cut(step.raw)}
            messages.append(assistant)
            calls = assistant.get("tool_calls")
            if calls:
                messages.append({"role": "tool", "tool_call_id": calls[0].get("id", ""),
                                 "content": step.observation})
            else:
                messages.append({"role": "user", "content": step.observation})
        return messages

    async def step(self, episode: EpisodeView, emit: Callable[[Event], None]) -> AgentTurn:
        if self.closed:
            raise ModelFailure("model.closed", "the agent was closed")
        if self.request_lock is None:
            return await self._step(episode, emit)
        async with self.request_lock:
            return await self._step(episode, emit)

    def _endpoint_for(self, episode: EpisodeView) -> Endpoint:
        """At temperature 0 a small model repeats a rejected reply word for word; after an error
        finding, sample this step warmer (seeded, so still reproducible)."""
        warm = self.temperature_after_error
        last = episode.steps[-1] if episode.steps else None
        if warm is None or last is None:
            return self.endpoint
        if not any(f.get("severity") == "error" or f.get("code") == "loop.repeat" for f in last.findings):
            return self.endpoint
        current = self.endpoint.params.get("temperature") or 0.0
        if current >= warm:
            return self.endpoint
        return Endpoint(self.endpoint.model, self.endpoint.api_base, self.endpoint.api_key_env,
                        {**self.endpoint.params, "temperature": warm}, self.endpoint.timeout)

    async def _step(self, episode: EpisodeView, emit: Callable[[Event], None]) -> AgentTurn:
        index = len(episode.steps)
        messages = self.messages(episode)
        endpoint = self._endpoint_for(episode)
        if self.server is not None:
            self.server.take_report()  # start this step's server figures from here
        attempts = 0
        counted = 0  # attempts that count against `retries` (not those that went to another server)
        failovers = 0
        empty = 0
        served: list[Endpoint] = []  # the server that answered, when this model is a pool
        route = None
        if self.pool is not None:
            pool = self.pool

            async def route(kwargs: dict):
                response, used = await pool.route(kwargs)
                served.append(used)
                return response, used

        def on_text(piece: str) -> None:
            if not self.closed:
                emit(TextDelta(self.episode_id, index, piece))

        while True:
            attempts += 1
            counted += 1
            served.clear()
            sent = time.monotonic()
            try:
                completion = await self.complete(
                    endpoint, messages, on_text=on_text, tools=self.tools_native,
                    response_format=self.response_format, seed=self.seed, route=route)
                if not completion.text.strip() and not completion.tool_calls:
                    if empty < EMPTY_RETRIES:
                        empty += 1
                        continue
                    raise ModelFailure("model.empty", f"{self.endpoint.model} returned an empty reply "
                                       f"{empty + 1} times", transient=True, details=self.endpoint.public())
                break
            except ModelFailure as failure:
                failure.details.setdefault("model", self.endpoint.model)
                failure.details.setdefault("api_base", self.endpoint.api_base)
                failure.details["attempts"] = attempts
                if failure.code == "model.unreachable" and self.server is not None and not self.server.running():
                    failure = ModelFailure(
                        "model.unreachable", "the embedded model server has stopped; its log ends with: "
                        + " | ".join(self.server.log_tail(3)), transient=False, details=failure.details)
                if (self.pool is not None and failure.code != "model.empty" and self.pool.failed(failure, emit)
                        and failovers < 2 * len(self.pool.servers)):
                    failovers += 1
                    counted -= 1
                    continue  # that server is out of rotation: at once to another one
                if not failure.transient or counted > self.retries or failure.code == "model.empty":
                    raise failure
                delay = min(BACKOFF_MAX_S, BACKOFF_S * 2 ** (attempts - 1)) * (0.75 + 0.5 * random.random())
                await asyncio.sleep(delay)
        answered = served[-1] if served else self.endpoint
        if self.pool is not None and served:
            self.pool.succeeded(answered, emit, sent)
        turn = self._turn(completion, attempts, answered)
        turn.usage["temperature"] = endpoint.params.get("temperature")
        if self.pool is not None:
            turn.usage["api_base"] = answered.api_base
        return turn

    def _turn(self, completion, attempts: int, answered: Endpoint | None = None) -> AgentTurn:
        usage: dict = dict(completion.usage)
        usage.update(latency_s=round(completion.latency_s, 4),
                     ttft_s=None if completion.ttft_s is None else round(completion.ttft_s, 4),
                     finish_reason=completion.finish_reason, attempts=attempts)
        if self.server is not None:
            report = self.server.take_report()
            if report:
                usage["cached_tokens"] = report["cached_tokens"]
                usage["processed_tokens"] = report["processed_tokens"]
                # The server's own counts beat litellm's estimate for a streamed reply.
                usage["prompt_tokens"] = report["cached_tokens"] + report["processed_tokens"]
                usage["completion_tokens"] = report["generated_tokens"]
                usage["server_prompt_s"] = round(report["prompt_eval_s"], 4)
                usage["server_generation_s"] = round(report["generation_s"], 4)
                usage["server_total_s"] = round(report["total_s"], 4)
        usage["cost_usd"] = cost_usd(answered or self.endpoint, usage)
        if self.format == "native" and completion.tool_calls:
            calls = completion.tool_calls
            for i, call in enumerate(calls):
                call["id"] = call.get("id") or f"call_{self.episode_id[:8]}_{len(self._assistant)}_{i}"
            first = calls[0]
            raw = json.dumps({"content": completion.text or None, "tool_calls": calls}, ensure_ascii=False)
            self._assistant.append({"role": "assistant", "content": completion.text or None, "tool_calls": [first]})
            parsed = parse_native_call(first["function"]["name"], first["function"]["arguments"],
                                       call_id=first["id"], thought=completion.text.strip())
            if len(calls) > 1:
                parsed = Parsed(parsed.thought, parsed.action, parsed.problem,
                                parsed.notes + (f"ignored {len(calls) - 1} further tool call(s)",))
        else:
            raw = completion.text
            self._assistant.append({"role": "assistant", "content": prompts._cut(raw)})
            parsed = parse_json_action(raw)
            if self.format == "native" and parsed.action is not None:
                parsed = Parsed(parsed.thought, parsed.action, parsed.problem, parsed.notes + ("action-in-text",))
        if parsed.problem is not None and completion.finish_reason == "length":
            parsed = Parsed(parsed.thought, parsed.action, finding(
                "format.unparseable",
                detail="it was cut off at the length limit (keep the thought to one short sentence)"),
                parsed.notes + ("cut-at-max-tokens",))
        return AgentTurn(raw=raw, parsed=parsed, usage=usage)

    async def aclose(self) -> None:
        self.closed = True
