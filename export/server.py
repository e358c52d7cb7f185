"""`mengzi serve`: a JSON HTTP API over a `Predictor`, with dynamic batching. Torch-free: standard library only.

    GET  /health   -> 200 {"status": "ok"}
    GET  /info     -> 200 {...predictor.info(), "server": {limits}, "stats": {requests, records, batches, ...}}
    POST /predict  {"inputs": [record, ...]} -> 200 {"outputs": [result, ...]}   one result per record, same order
                   {"inputs": record}        -> 200 {"outputs": [result]}        one record: still a list

The body is a JSON object whose only key is "inputs" (a bare record is refused, so a typo like "input" is an
error, not a record); UTF-8. Content-Type may be absent, application/json (or */*+json), or the form type that
`curl -d` sends by default: the body is parsed as JSON whatever it says. Every error is JSON {"error": "reason"}:
400 bad JSON (line, column), missing or unknown keys, a record failing `validate` (its index and why); 411 no
Content-Length; 413 a body over max_request_bytes (judged from Content-Length, before reading) or over
max_request_records records; 415 another content type (multipart, text/plain, ...); 404 unknown path; 405 wrong
method (with Allow); 503 queue full (with Retry-After) or shutting down; 500 only when the predictor itself fails
(logged).

Batching (`batcher.py`): request threads validate their records, then queue them; one worker thread predicts
batches of up to max_batch records, waiting at most max_wait_ms to fill one. The queue holds at most max_queue
records; past that, requests are refused (503) instead of piling up threads and latency. `predictor.validate` is
called from many request threads at once; `predict` only from the worker.

Stopping (SIGTERM or Ctrl-C; a second one hurries): the server keeps accepting connections but answers new
requests 503 "shutting down"; requests already being predicted or queued are answered within grace_seconds, and
whatever is still queued then gets 503. Then it stops accepting, lets the last replies go out, and exits 0.

No authentication and no TLS: it binds 127.0.0.1 by default and warns when asked to bind anything else. A port in
use (or an address this machine lacks) is a one-line error.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import logging
import signal
import socket
import socketserver
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..config import ConfigError, option
from .batcher import Batcher, BatcherClosed, PredictError, QueueFull

log = logging.getLogger(__name__)

ROUTES = {"/health": "GET", "/info": "GET", "/predict": "POST"}
DRAIN_BYTES, DRAIN_SECONDS = 16 << 20, 2.0  # how much of an unwanted body we read before closing (see _drain)
FORM_TYPES = ("application/x-www-form-urlencoded",)  # what `curl -d` sends unless told otherwise
LAST_REPLIES_SECONDS = 2.0  # after the accept loop stopped: how long connections already accepted may take to reply
JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


@dataclass
class ServeConfig:
    model: str = option("", "export folder (written by `mengzi export`)")
    host: str = option("127.0.0.1", "address to bind; anything but loopback exposes an API without authentication")
    port: int = option(8000, "port to bind (0: any free port)")
    max_batch: int = option(32, "most records per predictor call")
    max_wait_ms: float = option(5.0, "longest a record waits for others to fill its batch")
    max_request_records: int = option(256, "most records in one request (413 above)")
    max_request_bytes: int = option(1_000_000, "largest request body in bytes (413 above)")
    max_queue: int = option(4096, "most records waiting for the model; more gets 503 (backpressure)")
    providers: str = option("auto", "ONNX Runtime providers: auto (TensorRT > CUDA > CPU), or cpu, cuda, tensorrt")
    threads: int = option(0, "ONNX Runtime intra-op threads (0: its default)")
    grace_seconds: float = option(10.0, "on SIGTERM / Ctrl-C: how long requests already received may take to be "
                                  "answered; what is still queued then gets 503", min=0)


class _Reject(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _json_type(value) -> str:
    return "null" if value is None else JSON_TYPES.get(type(value), type(value).__name__)


def _jsonable(value):
    if hasattr(value, "tolist"):  # numpy scalars and arrays, without importing numpy
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: load clients reuse connections
    server_version = "mengzi-serve"
    timeout = 30  # seconds an idle or slowly-sending client may hold its thread
    disable_nagle_algorithm = True  # headers and body go out as two writes; Nagle would hold the body ~40 ms

    def _dispatch(self) -> None:
        with self.server.request_started(self.request):
            self._answer()

    def _answer(self) -> None:
        method, self._body_read = self.command, False
        path = self.path.split("?", 1)[0]
        try:
            if self.server.draining:
                with self.server._state:
                    self.server.refused_stopping += 1
                raise _Reject(503, "server is shutting down", {"Retry-After": "1"})
            if path not in ROUTES:
                raise _Reject(404, f"no such path {path!r}; paths: {', '.join(ROUTES)}")
            if method != ROUTES[path]:
                raise _Reject(405, f"{method} {path} is not allowed; use {ROUTES[path]}", {"Allow": ROUTES[path]})
            if path == "/health":
                return self._reply(200, {"status": "ok"})
            if path == "/info":
                return self._reply(200, self.server.info())
            records = self._parse(self._read_body())
            try:
                outputs = self.server.batcher.submit(records)
            except (QueueFull, BatcherClosed) as e:
                raise _Reject(503, str(e), {"Retry-After": "1"}) from None
            except PredictError as e:
                raise _Reject(500, str(e)) from None
            self._reply(200, {"outputs": outputs})
        except _Reject as e:
            self._reply(e.status, {"error": e.message}, e.headers)
        except Exception as e:  # a bug here or in predictor.info(): say so, keep serving
            log.exception("%s %s failed", method, path)
            self._reply(500, {"error": f"internal error: {type(e).__name__}: {e}"})

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

    def _declared_length(self) -> int | None:
        length = self.headers.get("Content-Length", "").strip()
        return int(length) if length.isdigit() else None

    def _read_body(self) -> bytes:
        media = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
        if media != "application/json" and not media.endswith("+json") and media not in FORM_TYPES:
            raise _Reject(415, f"Content-Type {media!r} is not supported; send application/json")
        if "Transfer-Encoding" in self.headers:
            raise _Reject(411, "chunked bodies are not supported; send Content-Length")
        length = self.headers.get("Content-Length")
        if length is None:
            raise _Reject(411, "Content-Length is required")
        if not length.strip().isdigit():
            raise _Reject(400, f"bad Content-Length {length!r}")
        limit = self.server.cfg.max_request_bytes
        if int(length) > limit:  # judged before reading: an oversized body never reaches memory
            raise _Reject(413, f"body is {int(length)} bytes, the limit is {limit} (max_request_bytes)")
        try:
            body = self.rfile.read(int(length))
        except TimeoutError:
            self.close_connection = True
            raise _Reject(408, f"body not received within {self.timeout} s") from None
        self._body_read = True
        if len(body) < int(length):
            self.close_connection = True
            raise _Reject(400, f"body ended after {len(body)} of {int(length)} bytes")
        return body

    def _parse(self, body: bytes) -> list[dict]:
        try:
            data = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise _Reject(400, f"body is not UTF-8 (byte {e.start})") from None
        except json.JSONDecodeError as e:
            raise _Reject(400, f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
        except RecursionError:
            raise _Reject(400, "invalid JSON: nested too deeply") from None
        usage = 'send {"inputs": [record, ...]}'
        if not isinstance(data, dict):
            raise _Reject(400, f"body must be a JSON object, got {_json_type(data)}; {usage}")
        if "inputs" not in data:
            raise _Reject(400, f"missing field 'inputs'; {usage}")
        if len(data) > 1:
            raise _Reject(400, f"unknown field(s) {sorted(set(data) - {'inputs'})}; {usage}")
        inputs = data["inputs"]
        inputs = [inputs] if isinstance(inputs, dict) else inputs
        if not isinstance(inputs, list):
            raise _Reject(400, f"'inputs' must be an array of records or one record, got {_json_type(inputs)}")
        limit = self.server.cfg.max_request_records
        if len(inputs) > limit:
            raise _Reject(413, f"{len(inputs)} records in one request, the limit is {limit} (max_request_records)")
        for i, record in enumerate(inputs):  # all validated before any is queued: a request succeeds or fails whole
            if not isinstance(record, dict):
                raise _Reject(400, f"inputs[{i}]: a record must be a JSON object, got {_json_type(record)}")
            try:
                self.server.predictor.validate(record)
            except (ValueError, TypeError) as e:
                raise _Reject(400, f"inputs[{i}]: {e}") from None
        return inputs

    def _reply(self, status: int, payload: dict, headers: dict | None = None) -> None:
        try:
            body = json.dumps(payload, ensure_ascii=False, default=_jsonable).encode("utf-8")
        except (TypeError, ValueError) as e:
            log.exception("result not JSON serialisable")
            status, body = 500, json.dumps({"error": f"result not JSON serialisable: {e}"}).encode("utf-8")
        unread = not self._body_read and bool(self._declared_length())
        if unread or "Transfer-Encoding" in self.headers:
            self.close_connection = True  # the unread body would be parsed as the next request
        if self.server.draining:
            self.close_connection = True  # no next request on this connection: the server is stopping
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        if unread:
            self._drain()

    def _drain(self) -> None:
        """Read and drop a body we refused, for a bounded time: closing a socket with unread data sends a TCP
        reset, which can destroy our reply before the client (still sending) reads it."""
        deadline, left = time.monotonic() + DRAIN_SECONDS, min(self._declared_length() or 0, DRAIN_BYTES)
        try:
            self.connection.settimeout(0.5)
            while left > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    def log_message(self, format, *args):  # one DEBUG line per request instead of stderr
        log.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default listen backlog (5) drops connections from 32 clients starting at once

    def __init__(self, address: tuple[str, int], predictor, batcher: Batcher, cfg: ServeConfig):
        self.predictor, self.batcher, self.cfg = predictor, batcher, cfg
        self.draining, self.refused_stopping = False, 0  # set by drain(): new requests get 503 (counted)
        # connections accepted whose first request has not started yet, and requests being answered: what a
        # stopping server waits for (idle keep-alive connections are neither)
        self._fresh: set[int] = set()
        self._active = 0
        self._state = threading.Condition()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self):
        # HTTPServer.server_bind looks the host up with getfqdn, which can hang for seconds on a machine with bad DNS
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def info(self) -> dict:
        limits = {k: getattr(self.cfg, k) for k in ("max_batch", "max_wait_ms", "max_request_records",
                                                    "max_request_bytes", "max_queue")}
        return {**self.predictor.info(), "server": limits, "stats": self.batcher.stats()}

    def process_request(self, request, client_address):  # the accept loop's thread
        with self._state:
            self._fresh.add(id(request))
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):  # the connection's thread
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._state:
                self._fresh.discard(id(request))
                self._state.notify_all()

    @contextlib.contextmanager
    def request_started(self, connection):
        with self._state:
            self._fresh.discard(id(connection))
            self._active += 1
        try:
            yield
        finally:
            with self._state:
                self._active -= 1
                self._state.notify_all()

    def wait_until(self, quiet, deadline: float, hurry: threading.Event | None = None) -> bool:
        """Wait until `quiet(fresh connections, active requests)` holds, the deadline passes or `hurry` is set."""
        with self._state:
            while not quiet(len(self._fresh), self._active):
                left = deadline - time.monotonic()
                if left <= 0 or (hurry is not None and hurry.is_set()):
                    return False
                self._state.wait(min(left, 0.1))
        return True


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def make_server(predictor, cfg: ServeConfig) -> tuple[ThreadingHTTPServer, Batcher]:
    """A bound server (not yet serving: call `serve_forever()`) and its started batcher. To stop: `shutdown()`
    from another thread, then `server_close()` and `batcher.close()`. `cfg.port` 0 picks a free port
    (`server.server_address[1]`)."""
    if not is_loopback(cfg.host):
        log.warning("binding %s: the API has no authentication and no TLS; anyone who can reach this address "
                    "can use the model. Put it behind a proxy that authenticates, or bind 127.0.0.1", cfg.host)
    for name in ("max_batch", "max_request_records", "max_request_bytes", "max_queue"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(cfg, name)}")
    if cfg.max_wait_ms < 0:
        raise ValueError(f"max_wait_ms must be >= 0, got {cfg.max_wait_ms}")
    if cfg.max_queue < cfg.max_request_records:
        raise ValueError(f"max_queue ({cfg.max_queue}) must be at least max_request_records "
                         f"({cfg.max_request_records}), or the largest request could never be queued")
    batcher = Batcher(predictor, cfg.max_batch, cfg.max_wait_ms, cfg.max_queue)
    server = _Server((cfg.host, cfg.port), predictor, batcher, cfg)
    batcher.start()
    return server, batcher


def drain(server: _Server, batcher: Batcher, grace: float, hurry: threading.Event | None = None) -> None:
    """Stop `server` (running `serve_forever` in another thread) without dropping a request: new requests get 503,
    those already taken are answered within `grace` seconds (what is still queued then gets 503), then the accept
    loop stops and the connections it accepted get their replies (bounded). `hurry` set: skip the grace."""
    server.draining = True
    answered = server.wait_until(lambda fresh, active: active == 0, time.monotonic() + grace, hurry)
    batcher.close(timeout=None if answered else 0.0)
    server.shutdown()  # stops accepting; connections the kernel queued meanwhile are refused at server_close()
    server.wait_until(lambda fresh, active: fresh == 0 and active == 0, time.monotonic() + LAST_REPLIES_SECONDS)


def bind_error(host: str, port: int, error: OSError) -> str:
    """One line for a failed bind."""
    if error.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is in use (another server?); choose another with --port"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"no permission to bind port {port} on {host} (ports below 1024 need privileges); choose --port"
    if error.errno == errno.EADDRNOTAVAIL or isinstance(error, socket.gaierror):
        return f"cannot bind {host}: not an address of this machine ({error.strerror or error})"
    return f"cannot bind {host}:{port}: {error.strerror or error}"


def serve(cfg: ServeConfig) -> None:
    """Load the export folder, serve until SIGTERM or Ctrl-C, then drain (see the module doc) and return."""
    if not cfg.model:
        raise ValueError("--model is required: an export folder written by `mengzi export`")
    from .predictor import Predictor  # lazily: the module stays importable (and testable) without a model runtime

    predictor = Predictor(cfg.model, providers=cfg.providers, threads=cfg.threads)
    try:
        server, batcher = make_server(predictor, cfg)
    except OSError as e:
        raise ConfigError(bind_error(cfg.host, cfg.port, e)) from None
    host, port = server.server_address[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    print(f"mengzi serve: {cfg.model} at {url} (POST /predict, GET /info, GET /health); Ctrl-C stops", flush=True)
    # Both Ctrl-C and SIGTERM (docker stop, systemd, kill) drain. SIGINT gets an explicit handler because a process
    # started in the background by a non-interactive shell (`mengzi serve ... &`) inherits it as ignored. Python
    # delivers signals to the main thread only; serve() called from another thread leaves them alone.
    hurry, drainer = threading.Event(), []

    def stop(signum, frame):
        if drainer:  # a second signal: answer what is left with 503 now
            hurry.set()
            return
        print(f"stopping ({signal.Signals(signum).name}): answering requests already received, at most "
              f"{cfg.grace_seconds:g} s", flush=True)
        drainer.append(threading.Thread(target=drain, args=(server, batcher, cfg.grace_seconds, hurry),
                                        name="mengzi-drain", daemon=True))
        drainer[0].start()

    main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        server.serve_forever()
        if drainer:
            drainer[0].join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()
        batcher.close(timeout=0.0)
        s = batcher.stats()
        print(f"served {s['requests']} requests, {s['records']} records (mean batch {s['mean_batch']}); "
              f"503 while stopping: {server.refused_stopping} new requests, {s['closed']} queued", flush=True)
