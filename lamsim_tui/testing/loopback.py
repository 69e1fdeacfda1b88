"""A loopback OpenAI-protocol server that answers after a fixed simulated latency, for benchmarks and
tests of many episodes at once (`bench/concurrency.py`, `tests/test_router.py`).

It runs in a process of its own (so its work is not counted as the engine's) on 127.0.0.1 only:

    python -m lamsim_tui.testing.loopback --latency 0.2 --replies replies.json [--chunks 8] [--port 0]

prints `port N` once it listens, then `request K` after each completion it finished (K counts them).
It speaks what litellm's `openai/...` provider sends: `POST /v1/chat/completions` streamed (SSE, in
HTTP/1.1 chunks on kept-alive connections) or not, and `GET /v1/models`. A streamed reply sends its
first piece at once and the rest spread over `--latency` seconds, like a server generating tokens;
a whole reply comes after `--latency`.

What it replies: `--replies` is a JSON list of texts; the reply to a request is the text at the index
of how many assistant messages the request already has (the step of the episode), the last one for
every later step, with `{step}` replaced by that index. Kill it (SIGKILL, by its pid) to take it down
mid-stream: the connections it had open break, as when a real server dies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

DEFAULT_REPLIES = ['{"thought": "done", "tool": "finish", "arguments": {"answer": 1}}']


class Loopback:
    def __init__(self, replies: list[str], latency: float, chunks: int, usage: bool = True):
        self.replies = replies or DEFAULT_REPLIES
        self.latency = latency
        self.chunks = max(1, chunks)
        self.usage = usage
        self.served = 0

    def reply_for(self, body: dict) -> str:
        step = sum(1 for m in body.get("messages") or () if isinstance(m, dict) and m.get("role") == "assistant")
        text = self.replies[min(step, len(self.replies) - 1)]
        return text.replace("{step}", str(step))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                raw = await reader.readexactly(length) if length else b""
                keep = headers.get("connection", "").lower() != "close"
                if method == "GET" and path.rstrip("/").endswith("/models"):
                    self._json(writer, 200, {"object": "list", "data": [{"id": "loopback", "object": "model"}]}, keep)
                elif method == "POST" and path.rstrip("/").endswith("/chat/completions"):
                    try:
                        body = json.loads(raw or b"{}")
                    except ValueError:
                        self._json(writer, 400, {"error": {"message": "bad json"}}, keep)
                    else:
                        await self._complete(writer, body, keep)
                else:
                    self._json(writer, 404, {"error": {"message": f"no route {path}"}}, keep)
                await writer.drain()
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    def _json(self, writer: asyncio.StreamWriter, status: int, payload: dict, keep: bool) -> None:
        data = json.dumps(payload).encode()
        writer.write(f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(data)}\r\nConnection: {'keep-alive' if keep else 'close'}\r\n\r\n"
                     .encode() + data)

    async def _complete(self, writer: asyncio.StreamWriter, body: dict, keep: bool) -> None:
        text = self.reply_for(body)
        model = body.get("model", "loopback")
        created = int(time.time())
        usage = {"prompt_tokens": 50 * len(body.get("messages") or ()), "completion_tokens": max(1, len(text) // 4)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if not body.get("stream"):
            await asyncio.sleep(self.latency)
            self._json(writer, 200, {"id": "chatcmpl-loopback", "object": "chat.completion", "created": created,
                                     "model": model, "usage": usage,
                                     "choices": [{"index": 0, "finish_reason": "stop",
                                                  "message": {"role": "assistant", "content": text}}]}, keep)
            self.served += 1
            print(f"request {self.served}", flush=True)
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                     b"Transfer-Encoding: chunked\r\nConnection: " + (b"keep-alive" if keep else b"close") + b"\r\n\r\n")
        base = {"id": "chatcmpl-loopback", "object": "chat.completion.chunk", "created": created, "model": model}
        size = -(-len(text) // self.chunks)
        pieces = [text[i:i + size] for i in range(0, len(text), size)] or [""]
        events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": pieces[0]},
                                        "finish_reason": None}]}]
        events += [{**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
                   for p in pieces[1:]]
        final = [{**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
        if self.usage and (body.get("stream_options") or {}).get("include_usage"):
            final.append({**base, "choices": [], "usage": usage})
        started = time.monotonic()
        gap = self.latency / max(1, len(events))
        for n, event in enumerate(events):
            if n:  # the first piece at once, the others spread over the latency
                await asyncio.sleep(max(0.0, started + n * gap - time.monotonic()))
            self._chunk(writer, b"data: " + json.dumps(event).encode() + b"\n\n")
            await writer.drain()
        await asyncio.sleep(max(0.0, started + self.latency - time.monotonic()))
        self._chunk(writer, b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in final)
                    + b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        self.served += 1
        print(f"request {self.served}", flush=True)

    @staticmethod
    def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(b"%x\r\n" % len(data) + data + b"\r\n")


async def serve(loopback: Loopback, port: int) -> None:
    server = await asyncio.start_server(loopback.handle, "127.0.0.1", port, backlog=1024)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per reply")
    parser.add_argument("--chunks", type=int, default=8, help="streamed pieces per reply")
    parser.add_argument("--replies", help="JSON file: a list of reply texts, one per step")
    args = parser.parse_args(argv)
    replies = DEFAULT_REPLIES
    if args.replies:
        with open(args.replies, encoding="utf-8") as f:
            replies = json.load(f)
    try:
        asyncio.run(serve(Loopback(replies, args.latency, args.chunks), args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
