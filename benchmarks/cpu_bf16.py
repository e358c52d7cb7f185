"""Is bf16 autocast faster than fp32 for pre-training steps on this CPU? Interleaved A/B in one process.

    python benchmarks/cpu_bf16.py [--presets mengzi-bert-tiny mengzi-bert-base] [--threads 1]

Times forward + backward + AdamW step of the MLM pre-training module (masked-only LM head) at seq 128, alternating
fp32 and bf16 (torch.autocast on CPU, what accelerate's mixed_precision=bf16 does) and printing medians and the
ratio. `train.mixed_precision: auto` stays fp32 on CPU unless this says bf16 wins here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["mengzi-bert-tiny", "mengzi-bert-base"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("$ python " + " ".join(sys.argv))
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch} x seq {args.seq}")

    from mengzi.models.heads import PretrainingHeads
    from mengzi.models.load import init_model
    from mengzi.pretrain.model import PretrainModule
    from mengzi.pretrain.objectives.mlm import MaskedLM, MLMConfig

    for preset in args.presets:
        model, tok = init_model(preset, task="pretraining")
        mlm = MaskedLM(MLMConfig(whole_word=False), tok, model.config, "bert")
        module = PretrainModule(model, PretrainingHeads(model.config.hidden_size, {}), [mlm]).train()
        opt = torch.optim.AdamW(module.parameters(), lr=1e-4)
        ids = torch.randint(1000, 20000, (args.batch, args.seq))
        base = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids),
                "word_start": torch.ones_like(ids)}

        def step(dtype, module=module, base=base, opt=opt) -> float:
            batch = module.collate(dict(base), np.random.default_rng(0))
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
                loss, _ = module(batch)
            loss.backward()
            opt.step()
            opt.zero_grad()
            return time.perf_counter() - start

        times = {"fp32": [], "bf16": []}
        step("fp32"), step("bf16")  # warm-up
        for _ in range(args.rounds):
            for dtype in ("fp32", "bf16"):
                times[dtype].append(step(dtype))
        fp32, bf16 = statistics.median(times["fp32"]), statistics.median(times["bf16"])
        tokens = args.batch * args.seq
        print(f"{preset:20} fp32 {fp32 * 1000:8.1f} ms/step ({tokens / fp32:8.0f} tok/s)   bf16 {bf16 * 1000:8.1f} "
              f"ms/step ({tokens / bf16:8.0f} tok/s)   bf16/fp32 speed {fp32 / bf16:.2f}x")


if __name__ == "__main__":
    main()
