"""`mengzi.export.server`: the HTTP API and its dynamic batching, over a fake predictor (no model, no torch)."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from mengzi.export.server import Batcher, ServeConfig, is_loopback, make_server


class FakePredictor:
    """Classifies by text length; records the size of every batch it is given."""

    def __init__(self, delay: float = 0.0, fail: bool = False, gate: threading.Event | None = None):
        self.delay, self.fail, self.gate = delay, fail, gate
        self.batches: list[int] = []
        self.started = threading.Event()

    def info(self) -> dict:
        return {"head": "sequence-classification", "labels": ["short", "long"], "precision": "fp32",
                "providers": ["CPUExecutionProvider"], "max_seq_len": 128}

    def validate(self, record: dict) -> None:
        text = record.get("text")
        if not isinstance(text, str) or not text:
            raise ValueError(f"field 'text': expected a non-empty string, got {text!r}")

    def predict(self, records: list[dict]) -> list[dict]:
        self.batches.append(len(records))
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("model exploded")
        return [{"label": "long" if len(r["text"]) > 5 else "short", "text": r["text"]} for r in records]


@contextlib.contextmanager
def running(predictor, **overrides):
    cfg = ServeConfig(port=0, **overrides)
    server, batcher = make_server(predictor, cfg)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", batcher
    finally:
        server.shutdown()
        server.server_close()
        batcher.close()
        thread.join(5)


def call(url: str, body=None, method: str | None = None, headers: dict | None = None) -> tuple[int, dict]:
    """(status, JSON body) for one request; `body` is JSON-encoded unless it is already bytes."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body, ensure_ascii=False).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def texts(n: int, prefix: str = "t") -> list[dict]:
    return [{"text": f"{prefix}{i}" * (1 + i % 3)} for i in range(n)]


def test_health_and_info():
    with running(FakePredictor(), max_batch=8) as (url, _):
        assert call(url + "/health") == (200, {"status": "ok"})
        status, info = call(url + "/info")
        assert status == 200 and info["head"] == "sequence-classification" and info["labels"] == ["short", "long"]
        assert info["server"]["max_batch"] == 8 and info["server"]["max_request_records"] == 256
        assert info["stats"]["requests"] == 0


def test_predict_roundtrip_in_order():
    fake = FakePredictor()
    with running(fake) as (url, batcher):
        records = [{"text": "短"}, {"text": "这是一个长一些的句子"}, {"text": "中等长度"}]
        status, body = call(url + "/predict", {"inputs": records})
        assert status == 200
        assert body["outputs"] == [{"label": "short", "text": "短"}, {"label": "long", "text": "这是一个长一些的句子"},
                                   {"label": "short", "text": "中等长度"}]
        # one record may be sent bare under "inputs"; the answer is still a list
        assert call(url + "/predict", {"inputs": {"text": "一"}}) == (200, {"outputs": [{"label": "short", "text": "一"}]})
        assert call(url + "/predict", {"inputs": []}) == (200, {"outputs": []})
        assert batcher.stats()["records"] == 4


def test_keep_alive_connection_survives_errors():
    with running(FakePredictor()) as (url, _):
        conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=10)
        for body, expected in [(b'{"inputs": [{"text": "a"}]}', 200), (b"{oops", 400), (b'{"inputs": [{"text": ""}]}', 400),
                               (b'{"inputs": [{"text": "b"}]}', 200)]:
            conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == expected
            json.loads(response.read())
        conn.close()


def test_concurrent_requests_are_batched_and_routed():
    fake = FakePredictor(delay=0.02)
    n = 16
    barrier, answers = threading.Barrier(n), [None] * n

    def client(k):
        barrier.wait()
        answers[k] = call(url + "/predict", {"inputs": [{"text": f"请求{k}"}, {"text": f"请求{k}的第二句话"}]})

    with running(fake, max_batch=32, max_wait_ms=50) as (url, batcher):
        threads = [threading.Thread(target=client, args=(k,)) for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        for k, (status, body) in enumerate(answers):
            assert status == 200
            assert [o["text"] for o in body["outputs"]] == [f"请求{k}", f"请求{k}的第二句话"]
        assert max(fake.batches) > 2, fake.batches  # records of different requests shared a predictor call
        assert sum(fake.batches) == 2 * n and batcher.stats()["requests"] == n


def test_request_larger_than_max_batch_is_split_in_order():
    fake = FakePredictor()
    with running(fake, max_batch=4, max_wait_ms=0) as (url, _):
        records = texts(10)
        status, body = call(url + "/predict", {"inputs": records})
        assert status == 200 and [o["text"] for o in body["outputs"]] == [r["text"] for r in records]
        assert fake.batches == [4, 4, 2]


@pytest.mark.parametrize("body, status, words", [
    (b'{"inputs": [{"text": "a"},\n  {"text": }]}', 400, ["invalid JSON", "line 2, column 12"]),
    (b"", 400, ["invalid JSON", "line 1, column 1"]),
    (b"\xff\xfe", 400, ["not UTF-8"]),
    ({"input": [{"text": "a"}]}, 400, ["missing field 'inputs'"]),
    ([{"text": "a"}], 400, ["JSON object", "got array"]),
    ({"inputs": [{"text": "a"}], "extra": 1}, 400, ["unknown field", "extra"]),
    ({"inputs": "a"}, 400, ["'inputs' must be", "string"]),
    ({"inputs": [{"text": "ok"}, {"text": ""}]}, 400, ["inputs[1]", "field 'text'"]),
    ({"inputs": [{"text": "ok"}, ["text"]]}, 400, ["inputs[1]", "JSON object", "array"]),
    ({"inputs": texts(4)}, 413, ["4 records", "max_request_records"]),
])
def test_bad_requests_say_why(body, status, words):
    fake = FakePredictor()
    with running(fake, max_request_records=3) as (url, _):
        got, answer = call(url + "/predict", body)
        assert got == status and all(w in answer["error"] for w in words), answer
        assert fake.batches == []  # nothing bad reached the model


def test_too_large_body_is_413_before_reading():
    with running(FakePredictor(), max_request_bytes=1000) as (url, _):
        status, answer = call(url + "/predict", {"inputs": [{"text": "长" * 2000}]})
        assert status == 413 and "max_request_bytes" in answer["error"]
        # a client that announces 1 GB and sends a few bytes gets its answer at once: nothing waits for the body
        conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=5)
        conn.putrequest("POST", "/predict")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(10**9))
        conn.endheaders(b'{"inputs": [')
        start = time.monotonic()
        response = conn.getresponse()
        assert response.status == 413 and "1000000000 bytes" in json.loads(response.read())["error"]
        assert time.monotonic() - start < 1.5  # not after the drain (2 s) nor the socket timeout
        conn.close()


def test_content_type_length_paths_and_methods():
    with running(FakePredictor()) as (url, _):
        status, answer = call(url + "/predict", b'{"inputs": []}', headers={"Content-Type": "text/plain"})
        assert status == 415 and "application/json" in answer["error"]
        status, answer = call(url + "/predict", b"--x\r\n", headers={"Content-Type": "multipart/form-data; boundary=x"})
        assert status == 415 and "multipart/form-data" in answer["error"]
        status, answer = call(url + "/nope")
        assert status == 404 and "/nope" in answer["error"]
        status, answer = call(url + "/predict")  # GET
        assert status == 405 and "POST" in answer["error"]
        assert call(url + "/health", method="DELETE")[0] == 405
        assert call(url + "/health", b"{}")[0] == 405
        conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=5)
        conn.putrequest("POST", "/predict")
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 411 and "Content-Length" in json.loads(response.read())["error"]
        conn.close()


def test_readme_curl_request_with_its_form_content_type_is_answered():
    """README: `curl -s localhost:8000/predict -d '{"inputs": [...]}'`: curl -d sends a form content type."""
    body = '{"inputs": [{"text": "花呗怎么还款", "text_pair": "花呗如何还钱"}]}'.encode()
    with running(FakePredictor()) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("localhost", port, timeout=10)
        conn.request("POST", "/predict", body, {"Content-Type": "application/x-www-form-urlencoded", "Accept": "*/*"})
        response = conn.getresponse()
        assert (response.status, json.loads(response.read())) == (200, {"outputs": [{"label": "long",
                                                                                   "text": "花呗怎么还款"}]})
        conn.close()
        if shutil.which("curl"):  # the README's command itself, on this server's port
            run = subprocess.run(["curl", "-s", f"localhost:{port}/predict", "-d", body.decode()], capture_output=True,
                                 text=True, timeout=30)
            assert json.loads(run.stdout) == {"outputs": [{"label": "long", "text": "花呗怎么还款"}]}, run
        # a form body that is not JSON still gets the JSON error, with where it broke
        status, answer = call(url + "/predict", b"text=a", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 400 and "invalid JSON at line 1" in answer["error"]


def test_predictor_failure_is_500_and_server_survives(caplog):
    fake = FakePredictor(fail=True)
    with running(fake) as (url, batcher), caplog.at_level(logging.ERROR, "mengzi.export.server"):
        status, answer = call(url + "/predict", {"inputs": texts(3)})
        assert status == 500 and "model exploded" in answer["error"]
        assert "prediction failed" in caplog.text
        fake.fail = False
        assert call(url + "/predict", {"inputs": texts(2)})[0] == 200
        assert batcher.stats()["failed_batches"] == 1


def test_full_queue_is_503():
    gate = threading.Event()
    fake = FakePredictor(gate=gate)
    with running(fake, max_batch=1, max_queue=4, max_request_records=4) as (url, _):
        first = []
        worker = threading.Thread(target=lambda: first.append(call(url + "/predict", {"inputs": texts(4)})))
        worker.start()
        assert fake.started.wait(5)  # the model holds one record, three wait in the queue
        status, answer = call(url + "/predict", {"inputs": texts(2)})
        assert status == 503 and "max_queue=4" in answer["error"]
        gate.set()
        worker.join(10)
        assert first[0][0] == 200 and len(first[0][1]["outputs"]) == 4


def test_close_answers_queued_requests():
    gate = threading.Event()
    fake = FakePredictor(gate=gate)
    batcher = Batcher(fake, max_batch=1, max_wait_ms=0).start()
    errors = []

    def submit():
        try:
            batcher.submit(texts(3))
        except RuntimeError as e:
            errors.append(str(e))

    t = threading.Thread(target=submit)
    t.start()
    assert fake.started.wait(5)
    closer = threading.Thread(target=batcher.close)
    closer.start()
    gate.set()
    closer.join(5)
    t.join(5)
    assert errors == ["server is shutting down"]


def test_loopback_by_default_and_warning_otherwise(caplog):
    assert ServeConfig().host == "127.0.0.1"
    server, batcher = make_server(FakePredictor(), ServeConfig(port=0))
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()
        batcher.close()
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("example.com")
    with caplog.at_level(logging.WARNING, "mengzi.export.server"):
        with pytest.raises(ValueError, match="max_queue"):  # the warning comes first; the bad limit stops the bind
            make_server(FakePredictor(), ServeConfig(host="0.0.0.0", port=0, max_queue=1, max_request_records=2))
    assert "no authentication" in caplog.text


def test_import_is_torch_free():
    code = ("import sys, mengzi.export.server; "
            "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


SERVE_SCRIPT = """
import sys, types
fake = types.ModuleType("mengzi.export.predictor")
class Predictor:
    def __init__(self, model, providers, threads):
        self.args = (model, providers, threads)
    def info(self):
        return {"head": "fake", "args": list(self.args)}
    def validate(self, record):
        pass
    def predict(self, records):
        return [{"n": len(r)} for r in records]
fake.Predictor = Predictor
sys.modules["mengzi.export.predictor"] = fake
from mengzi.export.server import ServeConfig, serve
serve(ServeConfig(model="some/export", port=0, providers="cpu", threads=2))
"""


def test_a_busy_port_is_one_line_and_no_traceback():
    code = SERVE_SCRIPT.replace("from mengzi.export.server import ServeConfig, serve\nserve(ServeConfig(",
                                "from mengzi.cli import main\nsys.exit(main(sys.argv[1:])) #")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run([sys.executable, "-c", code, "serve", "some/export", "--port", str(port)],
                             capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.strip().splitlines()[-1] == (f"mengzi serve: error: port {port} on 127.0.0.1 is in use "
                                                   "(another server?); choose another with --port")


LOAD_SCRIPT = """
import sys, time, types
fake = types.ModuleType("mengzi.export.predictor")
class Predictor:
    def __init__(self, model, providers, threads):
        pass
    def info(self):
        return {"head": "fake"}
    def validate(self, record):
        pass
    def predict(self, records):
        time.sleep(0.2)  # a slow model: 200 one-record requests in batches of 4 take 10 s, far past the grace
        return [{"k": r["k"]} for r in records]
fake.Predictor = Predictor
sys.modules["mengzi.export.predictor"] = fake
from mengzi.export.server import ServeConfig, serve
serve(ServeConfig(model="some/export", port=0, max_batch=4, max_wait_ms=1, grace_seconds=1.0))
"""


def test_sigterm_under_load_answers_every_request_then_exits_0():
    proc = subprocess.Popen([sys.executable, "-c", LOAD_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    n = 200
    sent, outcomes = threading.Semaphore(0), [None] * n
    try:
        first = proc.stdout.readline()
        assert " at http://127.0.0.1:" in first, first + proc.stderr.read()
        port = int(first.split(" at ")[1].split()[0].rsplit(":", 1)[1])

        def client(k):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                conn.request("POST", "/predict", json.dumps({"inputs": [{"k": k}]}),
                             {"Content-Type": "application/json"})
                sent.release()
                response = conn.getresponse()
                outcomes[k] = (response.status, json.loads(response.read()))
            except Exception as e:  # a reset, an empty reply: what must not happen
                outcomes[k] = (type(e).__name__, str(e))
                sent.release()
            finally:
                conn.close()

        threads = [threading.Thread(target=client, args=(k,)) for k in range(n)]
        for t in threads:
            t.start()
        for _ in range(n):  # every request is on the wire before the signal: each one is owed a reply
            assert sent.acquire(timeout=60)
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(60)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    statuses = [o[0] for o in outcomes]
    assert set(statuses) <= {200, 503}, [o for o in outcomes if o[0] not in (200, 503)][:5]
    assert statuses.count(200) and statuses.count(503), statuses  # some answered in the grace, the rest refused
    assert all(body == {"outputs": [{"k": k}]} for k, (status, body) in enumerate(outcomes) if status == 200)
    assert all("shutting down" in body["error"] for status, body in outcomes if status == 503)
    assert proc.returncode == 0, err
    assert "stopping (SIGTERM)" in out
    new, queued = map(int, out.split("503 while stopping: ")[1].replace(" new requests,", "").split()[:2])
    assert new + queued == statuses.count(503), out


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `cmd &` in a non-interactive shell (CI, scripts) passes on


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])
def test_serve_builds_the_predictor_and_stops_on_ctrl_c(stop):
    proc = subprocess.Popen([sys.executable, "-c", SERVE_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_ignore_sigint)
    try:
        first = proc.stdout.readline()
        assert "some/export at http://127.0.0.1:" in first, first + proc.stderr.read()
        url = first.split(" at ")[1].split()[0]
        assert call(url + "/info")[1]["args"] == ["some/export", "cpu", 2]
        assert call(url + "/predict", {"inputs": [{"a": 1}]}) == (200, {"outputs": [{"n": 1}]})
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=60)  # generous: a loaded 2-core CI box starts Python slowly
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopping" in out and "served 1 requests, 1 records" in out
