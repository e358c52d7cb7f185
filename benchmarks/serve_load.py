"""Load on `mengzi serve`: latency, throughput and server batch size at several concurrency levels, with
malformed requests mixed in, against a server started in this process on loopback.

    python benchmarks/serve_load.py --fake                     # the HTTP server and batcher alone (fake predictor)
    python benchmarks/serve_load.py --model runs/export/afqmc [--texts records.jsonl] [--providers cpu]

Each level (`--concurrency 1,8,32`) sends `--requests` POST /predict requests from that many client threads, each
on its own keep-alive connection; `--bad-share` of them are malformed (bad JSON, a record missing a field, a field
of the wrong type; each checked against `predictor.validate` beforehand). Every good request must get 200 with one
output per record and every bad one a 4xx; anything else is counted as wrong and makes the exit status 1.
Reported per level: p50/p99 latency of good requests (ms), requests/s (all), records/s (good), the server's mean
batch size, and the 4xx/5xx counts. The whole run stops at `--max-seconds` (the level in progress is cut short).

Records: `--texts FILE` (jsonl, one record a line), else built-in Chinese sentence pairs as
{"text": ..., "text_pair": ...} (classification exports; other heads need `--texts`). `--fake` serves a predictor
that labels records by text length in `--fake-ms` milliseconds per batch, to measure the server itself. The client
threads share the process (and the GIL) with the server, so the figures are a floor for what a separate client sees.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mengzi.export.server import ServeConfig, is_loopback, make_server  # noqa: E402

PAIRS = [
    ("花呗如何还款", "花呗怎么还款"), ("借呗可以提前还款吗", "借呗能不能提前还清"),
    ("为什么我的花呗额度降低了", "花呗额度为什么会减少"), ("蚂蚁借呗的利息怎么算", "借呗利率是多少"),
    ("今天天气怎么样", "明天会下雨吗"), ("这家餐厅的菜很好吃", "我喜欢这家饭店的菜"),
    ("如何开通花呗", "花呗怎样才能开通"), ("我想注销我的账户", "怎么删除支付宝账号"),
    ("孟子是战国时期的思想家", "孟子生活在战国时代"), ("北京是中国的首都", "上海是中国最大的城市"),
    ("这本书讲的是人工智能", "这本书的主题是机器学习"), ("火车几点到站", "列车什么时候到达"),
]


class FakePredictor:
    """Labels a record by its text's length; `ms` of pretend model time per batch."""

    def __init__(self, ms: float = 0.0):
        self.ms = ms

    def info(self) -> dict:
        return {"head": "sequence-classification", "labels": ["short", "long"], "precision": "fake",
                "providers": ["fake"], "max_seq_len": 128}

    def validate(self, record: dict) -> None:
        for field in ("text", "text_pair"):
            value = record.get(field)
            if field == "text" and value is None:
                raise ValueError("field 'text': missing")
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"field {field!r}: expected a non-empty string, got {value!r}")

    def predict(self, records: list[dict]) -> list[dict]:
        if self.ms:
            time.sleep(self.ms / 1000)
        return [{"label": "long" if len(r["text"]) > 6 else "short", "score": 0.5} for r in records]


def load_records(path: str | None) -> list[dict]:
    if not path:
        return [{"text": a, "text_pair": b} for a, b in PAIRS]
    records = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not records or not all(isinstance(r, dict) for r in records):
        raise SystemExit(f"{path}: expected one JSON object (a record) per line")
    return records


def invalid(predictor, record) -> bool:
    try:
        predictor.validate(record)
    except (ValueError, TypeError):
        return True
    return False


def bad_body(kind: str, good: list[dict], predictor, rng: random.Random) -> bytes:
    """A malformed request of `kind`, made from a good one (checked to be refused by `validate`)."""
    body = json.dumps({"inputs": good}, ensure_ascii=False).encode()
    if kind == "bad-json":
        return body[: rng.randrange(1, len(body) - 1)]
    record = dict(good[0])
    key = next(iter(record))
    if kind == "missing-field":
        del record[key]
        bad = record if invalid(predictor, record) else {}
    else:  # wrong-type
        record[key] = 12345
        bad = record if invalid(predictor, record) else "not a record"
    records = list(good)
    records[rng.randrange(len(records))] = bad
    return json.dumps({"inputs": records}, ensure_ascii=False).encode()


def make_payloads(n: int, per_request: int, bad_share: float, pool: list[dict], predictor, rng: random.Random):
    """[(kind, body, records)]: kind 'good' or a bad kind; bad kinds take turns."""
    kinds, payloads, n_bad = ["bad-json", "missing-field", "wrong-type"], [], 0
    bad_at = set(rng.sample(range(n), round(n * bad_share)))
    for i in range(n):
        good = [rng.choice(pool) for _ in range(per_request)]
        if i in bad_at:
            kind, n_bad = kinds[n_bad % 3], n_bad + 1
            payloads.append((kind, bad_body(kind, good, predictor, rng), per_request))
        else:
            payloads.append(("good", json.dumps({"inputs": good}, ensure_ascii=False).encode(), per_request))
    return payloads


def run_level(port: int, payloads: list, concurrency: int, deadline: float) -> dict:
    lock, results, next_i = threading.Lock(), [], [0]

    def client():
        conn = None
        while True:
            with lock:
                i, next_i[0] = next_i[0], next_i[0] + 1
            if i >= len(payloads) or time.monotonic() >= deadline:
                break
            kind, body, n = payloads[i]
            conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=max(1.0, deadline - time.monotonic()))
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                status = response.status
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                status, data = f"{type(e).__name__}", b""
                conn.close()
                conn = None
            ms = (time.perf_counter() - t0) * 1000
            if kind == "good":
                ok = status == 200 and len(json.loads(data)["outputs"]) == n
            else:
                ok = isinstance(status, int) and 400 <= status < 500
            with lock:
                results.append((kind, status, ms, n, ok, data[:200]))
        if conn:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    good_ms = sorted(ms for kind, status, ms, n, ok, _ in results if kind == "good" and status == 200)

    def pct(q):
        return good_ms[min(len(good_ms) - 1, int(q * len(good_ms)))] if good_ms else float("nan")

    return {"sent": len(results), "cut": len(results) < len(payloads), "wall": wall, "p50": pct(0.50),
            "p99": pct(0.99), "rps": len(results) / wall,
            "recs": sum(n for kind, status, ms, n, ok, _ in results if kind == "good" and status == 200) / wall,
            "4xx": sum(isinstance(r[1], int) and 400 <= r[1] < 500 for r in results),
            "5xx": sum(isinstance(r[1], int) and r[1] >= 500 for r in results),
            "wrong": [r for r in results if not r[4]]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="export folder (written by `mengzi export`)")
    what.add_argument("--fake", action="store_true", help="serve a fake predictor: measures the server itself")
    p.add_argument("--fake-ms", type=float, default=0.0, help="pretend model time per batch for --fake (ms)")
    p.add_argument("--texts", help="jsonl file of records (default: built-in Chinese sentence pairs)")
    p.add_argument("--requests", type=int, default=400, help="requests per concurrency level")
    p.add_argument("--concurrency", default="1,8,32", help="comma-separated client thread counts")
    p.add_argument("--records-per-request", type=int, default=1)
    p.add_argument("--bad-share", type=float, default=0.1, help="share of malformed requests")
    p.add_argument("--max-seconds", type=float, default=120.0, help="stop the whole run after this long")
    p.add_argument("--host", default="127.0.0.1", help="loopback only")
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--providers", default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not is_loopback(args.host):
        p.error(f"--host {args.host}: this benchmark binds loopback only (127.0.0.1, ::1, localhost)")
    if not 0 <= args.bad_share < 1:
        p.error("--bad-share must be in [0, 1)")
    deadline = time.monotonic() + args.max_seconds
    levels = [int(c) for c in args.concurrency.split(",")]

    if args.fake:
        predictor = FakePredictor(args.fake_ms)
    else:
        from mengzi.export.predictor import Predictor

        predictor = Predictor(args.model, providers=args.providers, threads=args.threads)
    pool = load_records(args.texts)
    for i, record in enumerate(pool):
        try:
            predictor.validate(record)
        except (ValueError, TypeError) as e:
            raise SystemExit(f"record {i} does not suit this model ({e}); pass --texts FILE with its records") from None
    rng = random.Random(args.seed)

    cfg = ServeConfig(host=args.host, port=0, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                      max_request_records=max(256, args.records_per_request))
    server, batcher = make_server(predictor, cfg)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    port = server.server_address[1]
    info = predictor.info()
    print(f"server on 127.0.0.1:{port}; model: {'fake' if args.fake else args.model} ({info.get('head')}, "
          f"{info.get('precision')}, {info.get('providers')}); max_batch {args.max_batch}, max_wait "
          f"{args.max_wait_ms} ms; {args.records_per_request} record(s)/request, {args.bad_share:.0%} bad; "
          f"{os.cpu_count()} CPUs, client and server in one process")
    failed = False
    try:
        run_level(port, make_payloads(3, args.records_per_request, 0, pool, predictor, rng), 1, deadline)  # warm-up
        print(f"\n{'conc':>4} {'sent':>5} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'rec/s':>8} {'batch':>6} "
              f"{'4xx':>5} {'5xx':>5} {'wrong':>5}")
        for c in levels:
            if time.monotonic() >= deadline:
                print(f"{c:>4} skipped: --max-seconds {args.max_seconds:g} reached")
                continue
            payloads = make_payloads(args.requests, args.records_per_request, args.bad_share, pool, predictor, rng)
            before = batcher.stats()
            r = run_level(port, payloads, c, deadline)
            after = batcher.stats()
            batches = after["batches"] - before["batches"]
            mean_batch = (after["records"] - before["records"]) / batches if batches else 0.0
            print(f"{c:>4} {r['sent']:>5} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['rps']:>8.0f} {r['recs']:>8.0f} "
                  f"{mean_batch:>6.1f} {r['4xx']:>5} {r['5xx']:>5} {len(r['wrong']):>5}"
                  + ("  (cut short by --max-seconds)" if r["cut"] else ""))
            for kind, status, _, _, _, data in r["wrong"][:3]:
                print(f"     wrong: {kind} request got {status}: {data.decode('utf-8', 'replace')}")
            failed |= bool(r["wrong"])
    finally:
        server.shutdown()
        server.server_close()
        batcher.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
