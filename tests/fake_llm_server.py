"""A scriptable local LLM server speaking the real OpenAI and Ollama wire protocols, for backend tests.

OpenAI: ``POST /v1/chat/completions`` (JSON, or Server-Sent Events ``data: {chunk}`` ... ``data: [DONE]``
when ``"stream": true``) and ``GET /v1/models``. Ollama: ``POST /api/chat`` (NDJSON stream or one JSON
object), ``POST /api/show`` and ``GET /api/tags``. Every request is recorded; ``script`` says how to reply.

Example: ``with FakeLLMServer() as server: server.script = Script(reply="Yes [1]."); server.url``
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Script:
    """How the server answers chat requests until changed.

    ``delay``: seconds before the response starts; ``stall``: seconds of silence after the first text piece;
    ``drop``: how many chat requests to hang up on (no response) before answering; ``status``: an HTTP
    error to return; ``garbage``: 'text' (not JSON at all) or 'shape' (JSON of the wrong shape).
    """

    reply: str = "Gallium exports need a licence [1]."
    pieces: list[str] | None = None
    delay: float = 0.0
    stall: float = 0.0
    drop: int = 0
    status: int = 200
    garbage: str | None = None


@dataclass
class Request:
    """One request as received: method, path, headers and the parsed JSON body (None when not JSON)."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict | None
    dropped: bool = False

    @property
    def user_text(self) -> str:
        """Concatenated content of the user messages."""
        return "\n".join(m["content"] for m in (self.body or {}).get("messages", []) if m.get("role") == "user")

    @property
    def system_text(self) -> str:
        return "\n".join(m["content"] for m in (self.body or {}).get("messages", []) if m.get("role") == "system")


@dataclass
class _State:
    script: Script = field(default_factory=Script)
    requests: list[Request] = field(default_factory=list)
    dropped: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streaming, like vLLM and Ollama
    server: _Server

    def log_message(self, *args) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        self._record(None)
        if self.path.rstrip("/") == "/v1/models":
            self._json(200, {"object": "list", "data": [
                {"id": "fake-model", "object": "model", "created": 1700000000, "owned_by": "fake"}]})
        elif self.path == "/api/tags":
            self._json(200, {"models": [{"name": "fake-model:latest", "model": "fake-model:latest", "size": 1,
                                         "digest": "0" * 64, "modified_at": "2024-05-01T00:00:00Z"}]})
        else:
            self._json(404, {"error": f"no route {self.path}"})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        state = self.server.state
        if self.path in ("/v1/chat/completions", "/api/chat"):
            with state.lock:
                script = state.script
                drop = state.dropped < script.drop
                state.dropped += int(drop)
            request = self._record(body, dropped=drop)
            if drop:
                self.close_connection = True  # hang up without a byte: the client sees a dropped connection
                return
            self._chat(script, request)
        elif self.path == "/api/show":
            self._record(body)
            self._json(200, {"modelfile": "FROM fake", "parameters": "", "template": "{{ .Prompt }}",
                             "details": {"format": "gguf", "family": "llama", "parameter_size": "8B"},
                             "model_info": {"general.architecture": "llama", "llama.context_length": 8192},
                             "capabilities": ["completion"]})
        else:
            self._record(body)
            self._json(404, {"error": f"no route {self.path}"})

    def _record(self, body: dict | None, dropped: bool = False) -> Request:
        request = Request(self.command, self.path, dict(self.headers), body, dropped)
        with self.server.state.lock:
            self.server.state.requests.append(request)
        return request

    def _chat(self, script: Script, request: Request) -> None:
        if self._wait(script.delay):
            return
        ollama = self.path == "/api/chat"
        if script.status != 200:
            error = {"error": "fake failure"} if ollama else {
                "error": {"message": "fake failure", "type": "server_error", "param": None, "code": None}}
            return self._json(script.status, error)
        body = request.body or {}
        if script.garbage == "text":
            return self._send(200, "text/html" if not body.get("stream") else _stream_type(ollama),
                              b"<html><body>502 Bad Gateway</body></html>\n{not json")
        pieces = script.pieces or re.findall(r"\S+\s*", script.reply) or [""]
        model = body.get("model", "fake-model")
        if not body.get("stream"):
            payload = {"unexpected": True} if script.garbage else (
                _ollama_final(model, script.reply, full=True) if ollama else _openai_completion(model, script.reply))
            return self._json(200, payload)
        events = _ollama_events(model, pieces, script) if ollama else _openai_events(model, pieces, script)
        # OpenAI opens with a role-only chunk; the stall comes after the first piece of text.
        self._stream(_stream_type(ollama), events, script.stall, stall_at=0 if ollama else 1)

    def _stream(self, content_type: str, events: list[bytes], stall: float, stall_at: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, event in enumerate(events):
            self.wfile.write(f"{len(event):X}\r\n".encode() + event + b"\r\n")
            self.wfile.flush()
            if i == stall_at and self._wait(stall):
                return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _wait(self, seconds: float) -> bool:
        """Sleep, waking early when the server stops; True when it stopped."""
        return seconds > 0 and self.server.state.stop.wait(seconds)

    def _json(self, status: int, payload: dict) -> None:
        self._send(status, "application/json", json.dumps(payload).encode())

    def _send(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _stream_type(ollama: bool) -> str:
    return "application/x-ndjson" if ollama else "text/event-stream; charset=utf-8"


def _openai_chunk(model: str, delta: dict, finish: str | None = None) -> dict:
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def _openai_events(model: str, pieces: list[str], script: Script) -> list[bytes]:
    if script.garbage == "shape":
        chunks = [{"id": "x", "object": "chat.completion.chunk", "choices": "oops"}]
    else:
        chunks = [_openai_chunk(model, {"role": "assistant", "content": ""})]
        chunks += [_openai_chunk(model, {"content": p}) for p in pieces]
        chunks.append(_openai_chunk(model, {}, "stop"))
    return [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]


def _openai_completion(model: str, text: str) -> dict:
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}}


def _ollama_final(model: str, text: str, full: bool = False) -> dict:
    # The counters and durations a real Ollama puts on its last line.
    return {"model": model, "created_at": "2024-05-01T12:00:00.000000Z",
            "message": {"role": "assistant", "content": text if full else ""},
            "done_reason": "stop", "done": True, "total_duration": 512345678, "load_duration": 1234567,
            "prompt_eval_count": 50, "prompt_eval_duration": 2345678, "eval_count": 10, "eval_duration": 345678}


def _ollama_events(model: str, pieces: list[str], script: Script) -> list[bytes]:
    if script.garbage == "shape":
        lines = [{"model": model, "done": False, "message": "oops"}]
    else:
        lines = [{"model": model, "created_at": "2024-05-01T12:00:00.000000Z",
                  "message": {"role": "assistant", "content": p}, "done": False} for p in pieces]
        lines.append(_ollama_final(model, ""))
    return [json.dumps(line).encode() + b"\n" for line in lines]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    state: _State

    def handle_error(self, request, client_address) -> None:
        pass  # clients that time out leave broken pipes behind; that is the point of those tests


class FakeLLMServer:
    """Runs on 127.0.0.1 at a free port in a background thread; use as a context manager."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = _State()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        """Base URL without a path, e.g. http://127.0.0.1:41234."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def script(self) -> Script:
        return self._server.state.script

    @script.setter
    def script(self, script: Script) -> None:
        with self._server.state.lock:
            self._server.state.script = script
            self._server.state.dropped = 0

    @property
    def requests(self) -> list[Request]:
        with self._server.state.lock:
            return list(self._server.state.requests)

    def reset(self, script: Script | None = None) -> None:
        """Forget the recorded requests and answer with ``script`` (default: a plain cited reply)."""
        self.script = script or Script()
        with self._server.state.lock:
            self._server.state.requests.clear()

    def chat_requests(self) -> list[Request]:
        """The chat requests received (answered or dropped), oldest first."""
        return [r for r in self.requests if r.path in ("/v1/chat/completions", "/api/chat")]

    def __enter__(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.state.stop.set()
        self._server.shutdown()
        self._server.server_close()
