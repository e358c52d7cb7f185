"""Generation speed, PyTorch `generate` vs the ONNX export (with and without its KV cache), interleaved in one process.

    python benchmarks/generation_speed.py                          # T5 and GPT-Neo, tiny and base, 2 threads
    python benchmarks/generation_speed.py --sizes tiny --reps 5 --new-tokens 32

For each model: greedy decoding of `--batch` prompts of ~`--prompt-len` tokens for `--new-tokens` tokens, and beam
search (4 beams) for batch 1. Variants, measured round robin (A, B, C, A, B, C, ...) so machine drift hits each alike:

* `torch`: transformers' `model.generate` (KV cache on, its default);
* `ort-kv`: `mengzi.export.generation.OnnxGenerator` over the export folder `mengzi export` writes (decoder with past);
* `ort-nokv`: the same graphs without the cache (every step re-runs the whole prefix): what the cache saves.

Tokens/s counts the tokens each variant actually generated (the runs must agree token for token: the script checks
greedy parity and prints it), median over `--reps` rounds, with the ratio to `torch` from the same rounds. Weights are
random (speed does not depend on them); rows that emit EOS early stop early in every variant alike.
Exports are built once under --work through `mengzi export` (so each passed the numeric gate) and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

# torch and onnxruntime share the cores in one process: passive waits on both sides (see export_bench.py)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from export_bench import interleaved  # noqa: E402  (benchmarks/ is on sys.path when a script here runs)
from mengzi.export.generation import OnnxGenerator  # noqa: E402
from mengzi.export.run import ExportConfig, export_model  # noqa: E402
from mengzi.export.session import make_session, read_manifest  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from mengzi.models.load import init_model, load, save_pretrained  # noqa: E402

MODELS = {("t5", "tiny"): ("mengzi-t5-tiny", "seq2seq-lm"), ("t5", "base"): ("mengzi-t5-base", "seq2seq-lm"),
          ("gpt-neo", "tiny"): ("mengzi-gpt-neo-tiny", "causal-lm"),
          ("gpt-neo", "base"): ("mengzi-gpt-neo-base", "causal-lm")}


def build(family: str, size: str, work: Path, fresh: bool) -> tuple[Path, Path]:
    preset, task = MODELS[(family, size)]
    model_dir, export_dir = work / f"{family}-{size}-model", work / f"{family}-{size}-onnx"
    if fresh or not (model_dir / "config.json").is_file():
        model, tok = init_model(preset, task=task)
        save_pretrained(model, tok, model_dir, overwrite=True)
    if fresh or not (export_dir / "mengzi_export.json").is_file():
        t = time.perf_counter()
        export_model(ExportConfig(model=str(model_dir), out=str(export_dir), task=task, overwrite=True))
        print(f"  exported {export_dir.name} in {time.perf_counter() - t:.0f}s")
    return model_dir, export_dir


def prompts(tokenizer, batch: int, length: int) -> list[list[int]]:
    """Token ids of CSL dev abstracts (real text) cut to `length` tokens (T5 keeps its closing </s>)."""
    from mengzi.data import resolve

    with open(resolve("data:clue/csl/dev.json"), encoding="utf-8") as f:
        texts = [json.loads(line)["abst"] for _, line in zip(range(batch), f)]
    return tokenizer(texts, truncation=True, max_length=length)["input_ids"]


def _cut(row: list[int], eos: int) -> list[int]:
    return row[: row.index(eos)] if eos in row else row


def bench(family: str, size: str, work: Path, args) -> list[dict]:
    model_dir, export_dir = build(family, size, work, args.fresh)
    model, tokenizer = load(model_dir, task=MODELS[(family, size)][1])
    model.eval()
    manifest = read_manifest(export_dir)
    gen = OnnxGenerator(export_dir, manifest, Tokenizer.from_file(str(export_dir / "tokenizer.json")))
    gen.sessions = {name: make_session(export_dir / manifest["files"][name], "cpu", args.threads, spin=False)
                    for name in gen.gen["graphs"]}
    rows = []
    for batch, beams in ((args.batch, 1), (1, 4)):
        rows += bench_setting(f"{family}-{size}", model, tokenizer, gen, batch, beams, args)
    return rows


def bench_setting(name: str, model, tokenizer, gen: OnnxGenerator, batch: int, beams: int, args) -> list[dict]:
    ids = prompts(tokenizer, batch, args.prompt_len)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos, new = model.config.eos_token_id, args.new_tokens
    left = not model.config.is_encoder_decoder  # decoder-only prompts are left padded
    width = max(len(r) for r in ids)
    tensor = torch.full((batch, width), pad)
    mask = torch.zeros((batch, width), dtype=torch.long)
    for i, r in enumerate(ids):
        cols = slice(width - len(r), width) if left else slice(0, len(r))
        tensor[i, cols], mask[i, cols] = torch.tensor(r), 1
    out: dict[str, list] = {}

    def torch_generate():
        with torch.inference_mode():
            seq = model.generate(input_ids=tensor, attention_mask=mask, max_new_tokens=new, num_beams=beams,
                                 do_sample=False, pad_token_id=pad)
        keep = seq[:, width:] if left else seq[:, 1:]  # T5: drop the decoder start token
        out["torch"] = [_cut(r, eos) for r in keep.tolist()]

    def ort(use_cache: bool):
        def run():
            out["ort-kv" if use_cache else "ort-nokv"] = gen.generate_ids(ids, max_new_tokens=new, num_beams=beams,
                                                                          use_cache=use_cache)
        return run

    fns = {"torch": torch_generate, "ort-kv": ort(True)} | ({} if args.skip_nokv else {"ort-nokv": ort(False)})
    medians = interleaved(fns, args.reps)
    same = all(out[v] == out["torch"] for v in out)
    tokens = {v: sum(len(r) for r in out[v]) for v in out}
    print(f"\n{name}: batch {batch}, {'greedy' if beams == 1 else f'{beams} beams'}, prompts of <= {args.prompt_len} "
          f"tokens, up to {new} new, {args.threads} threads, median of {args.reps} interleaved rounds; same tokens as "
          f"torch: {same}")
    print(f"  {'variant':10} {'s/call':>8} {'tokens':>7} {'tokens/s':>9} {'vs torch':>9}")
    base = tokens["torch"] / medians["torch"]
    rows = []
    for v, sec in medians.items():
        rate = tokens[v] / sec
        rows.append({"model": name, "batch": batch, "beams": beams, "variant": v, "s": sec, "tokens": tokens[v],
                     "tokens_per_s": rate, "vs_torch": rate / base, "same_as_torch": same})
        print(f"  {v:10} {sec:8.3f} {tokens[v]:7d} {rate:9.1f} {rate / base:8.2f}x")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", nargs="+", default=["t5", "gpt-neo"], choices=["t5", "gpt-neo"])
    p.add_argument("--sizes", nargs="+", default=["tiny", "base"], choices=["tiny", "base"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--prompt-len", type=int, default=32)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-nokv", action="store_true", help="skip the no-cache ONNX variant")
    p.add_argument("--work", default="runs/bench/generation")
    p.add_argument("--fresh", action="store_true", help="rebuild the models and exports")
    p.add_argument("--json", default="", help="also write the rows here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        for family in args.families:
            rows += bench(family, size, work, args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
