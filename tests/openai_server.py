"""A small OpenAI chat-completions server for tests: real HTTP on 127.0.0.1, scripted replies.

It speaks what litellm's `openai/...` provider sends: `POST /v1/chat/completions` (streamed as SSE
or not) and `GET /v1/models`. Each request takes the next scripted `Reply` (or `default`); a reply
can also be a fault: an HTTP error status, a context-length error, a hang (client time-out), a
stream cut off mid-way, a malformed SSE line, an empty completion, or any bytes at all (`raw`).

    with OpenAIServer() as server:
        server.push(Reply(text='{"tool": "finish", "arguments": {"answer": 1}}'))
        ... api_base=server.api_base ...
        server.requests[0]["body"]["messages"]
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[dict] = field(default_factory=list)  # [{"name":..., "arguments": str|dict, "id":...}]
    finish_reason: str | None = None  # default: "tool_calls" when calling tools, else "stop"
    chunk_chars: int = 7  # characters per streamed chunk
    chunk_delay: float = 0.0  # seconds between chunks
    usage: dict | None = None  # e.g. {"prompt_tokens": 10, "completion_tokens": 3, "cached_tokens": 8}
    status: int | None = None  # an HTTP error status instead of a completion
    error_message: str = "scripted failure"
    error_code: str | None = None
    retry_after: float | None = None
    context_length: bool = False  # a 400 "context_length_exceeded" error
    hang: float = 0.0  # sleep before answering (longer than the client's time-out: a time-out)
    truncate_after: int | None = None  # close the stream after this many chunks: no finish, no [DONE]
    malformed: bool = False  # send a broken SSE data line
    empty: bool = False  # a completion with no content at all
    raw: Callable[[BaseHTTPRequestHandler], None] | None = None  # writes the whole HTTP response itself


Responder = Callable[[dict], Reply]


class OpenAIServer:
    def __init__(self, default: Reply | None = None):
        self.default = default or Reply(text='{"thought": "done", "tool": "finish", "arguments": {"answer": 1}}')
        self.script: deque[Reply | Responder] = deque()
        self.requests: list[dict] = []
        self.active_connections = 0
        self.connections_total = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----- control -----
    def push(self, *replies: Reply | Responder) -> None:
        self.script.extend(replies)

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return self._httpd.server_address[1]

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> OpenAIServer:
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="openai-test-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """True once no connection is open (the client closed everything it opened)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.active_connections == 0:
                return True
            time.sleep(0.02)
        return self.active_connections == 0

    def _next(self, body: dict) -> Reply:
        with self._lock:
            item = self.script.popleft() if self.script else self.default
        return item(body) if callable(item) else item


def closed_port() -> int:
    """A loopback port with nothing listening (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Handler(BaseHTTPRequestHandler):
    owner: OpenAIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.owner._lock:
            self.owner.active_connections += 1
            self.owner.connections_total += 1

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.owner._lock:
                self.owner.active_connections -= 1

    # ----- helpers -----
    def _send_json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": "test-model", "object": "model"}]})
        else:
            self._send_json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_json(400, {"error": {"message": "bad json"}})
            return
        self.owner.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        reply = self.owner._next(body)
        if reply.raw is not None:  # a misbehaving server: the reply writes its own bytes
            self.close_connection = True
            try:
                reply.raw(self)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        if reply.hang:
            time.sleep(reply.hang)
        if reply.context_length:
            self._send_json(400, {"error": {
                "message": "This model's maximum context length is 4096 tokens. However, your messages "
                           "resulted in 9000 tokens.",
                "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}})
            return
        if reply.status:
            headers = {"Retry-After": str(reply.retry_after)} if reply.retry_after is not None else None
            self._send_json(reply.status, {"error": {"message": reply.error_message, "type": "server_error",
                                                     "code": reply.error_code}}, headers)
            return
        model = body.get("model", "test-model")
        if body.get("stream"):
            self._stream(reply, model, body)
        else:
            self._complete(reply, model)

    def _usage(self, reply: Reply) -> dict | None:
        if reply.usage is None:
            return None
        usage = {k: v for k, v in reply.usage.items() if k != "cached_tokens"}
        usage.setdefault("total_tokens", usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0))
        if "cached_tokens" in reply.usage:
            usage["prompt_tokens_details"] = {"cached_tokens": reply.usage["cached_tokens"]}
        return usage

    def _calls(self, reply: Reply) -> list[dict]:
        calls = []
        for i, call in enumerate(reply.tool_calls):
            args = call.get("arguments", {})
            calls.append({"index": i, "id": call.get("id") or f"call_{uuid.uuid4().hex[:8]}", "type": "function",
                          "function": {"name": call["name"],
                                       "arguments": args if isinstance(args, str) else json.dumps(args)}})
        return calls

    def _finish_reason(self, reply: Reply) -> str:
        return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")

    def _complete(self, reply: Reply, model: str) -> None:
        message: dict = {"role": "assistant", "content": None if reply.empty else (reply.text or None)}
        calls = self._calls(reply)
        if calls:
            message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in calls]
        payload = {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
                   "choices": [{"index": 0, "message": message, "finish_reason": self._finish_reason(reply)}]}
        usage = self._usage(reply)
        if usage:
            payload["usage"] = usage
        self._send_json(200, payload)

    def _stream(self, reply: Reply, model: str, body: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        deltas: list[dict] = [{"role": "assistant", "content": ""}]
        if not reply.empty:
            text = reply.text
            for i in range(0, len(text), max(1, reply.chunk_chars)):
                deltas.append({"content": text[i:i + reply.chunk_chars]})
            for call in self._calls(reply):
                deltas.append({"tool_calls": [{"index": call["index"], "id": call["id"], "type": "function",
                                               "function": {"name": call["function"]["name"], "arguments": ""}}]})
                args = call["function"]["arguments"]
                for i in range(0, len(args), max(1, reply.chunk_chars)):
                    deltas.append({"tool_calls": [{"index": call["index"],
                                                   "function": {"arguments": args[i:i + reply.chunk_chars]}}]})
        try:
            for n, delta in enumerate(deltas):
                if reply.truncate_after is not None and n >= reply.truncate_after:
                    self.wfile.flush()
                    return  # the connection closes: no finish_reason, no [DONE]
                if reply.malformed and n == 1:
                    self.wfile.write(b'data: {"id": "chatcmpl-test", "choices": [{"delta": {"content": "oops\n\n')
                    self.wfile.flush()
                    return
                chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()
                if reply.chunk_delay:
                    time.sleep(reply.chunk_delay)
            final = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": self._finish_reason(reply)}]}
            self.wfile.write(b"data: " + json.dumps(final).encode() + b"\n\n")
            usage = self._usage(reply)
            if usage and (body.get("stream_options") or {}).get("include_usage"):
                self.wfile.write(b"data: " + json.dumps({**base, "choices": [], "usage": usage}).encode() + b"\n\n")
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (cancelled): that is what the cancellation test checks
