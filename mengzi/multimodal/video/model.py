"""MavorsVideoLM: clips -> intra-chunk encoder -> inter-chunk aggregator -> MLP projector -> a small causal LM.

The prompt carries one placeholder token (added to the tokenizer as a special token; prepended when the prompt
has none); its embedding is replaced by the clip's projected visual tokens in `inputs_embeds`. Training targets
end with EOS and only they are scored by the loss; `score` gives each option's summed log-probability.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ... import atomic
from ...config import dump_yaml, load_yaml
from .aggregator import InterChunkAggregator
from .chunking import Clip, chunk_video
from .config import VideoLMConfig
from .encoder import IntraChunkEncoder
from .images import image_to_clip

WEIGHTS, CONFIG, TOKENIZER = "model.safetensors", "config.yaml", "tokenizer"


@dataclass
class VideoLMOutput:
    loss: torch.Tensor | None
    logits: torch.Tensor


def preset_tokenizer(config: VideoLMConfig):
    from ...data import resolve
    from ...models.presets import get_preset
    from ...tokenizer import load_tokenizer

    spec = config.tokenizer or get_preset(config.lm_preset).tokenizer
    return load_tokenizer(resolve(spec), kind="gpt")


class MavorsVideoLM(nn.Module):
    def __init__(self, config: VideoLMConfig, tokenizer=None):
        super().__init__()
        from ...models.load import init_model
        from ...models.presets import get_preset

        if get_preset(config.lm_preset).family != "gpt-neo":
            raise ValueError(f"VideoLMConfig.lm_preset: {config.lm_preset!r} is not a causal LM (gpt-neo) preset")
        self.config = config
        tokenizer = tokenizer if tokenizer is not None else preset_tokenizer(config)
        if config.placeholder not in tokenizer.get_vocab():
            tokenizer.add_special_tokens({"additional_special_tokens": [config.placeholder]})
        # built after the placeholder is added: the preset rounds len(tokenizer) up to a multiple of 64 rows
        self.lm, self.tokenizer = init_model(config.lm_preset, tokenizer=tokenizer, task="causal-lm", seed=config.seed,
                                             overrides=config.lm_overrides)
        if len(tokenizer) > self.lm.get_input_embeddings().num_embeddings:
            self.lm.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=64)
        self.placeholder_id = tokenizer.convert_tokens_to_ids(config.placeholder)
        self.eos_id = tokenizer.eos_token_id
        self.bos_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        torch.manual_seed(config.seed)
        self.encoder = IntraChunkEncoder(config.vision_config(), config.chunk_frames)
        self.aggregator = InterChunkAggregator(config.vision_hidden, config.aggregator_heads, config.aggregator_layers,
                                               config.rope_base, config.aggregator_positions, config.aggregator_mask)
        lm_hidden = self.lm.config.hidden_size
        hidden = config.projector_hidden or lm_hidden
        self.projector = nn.Sequential(nn.Linear(config.vision_hidden, hidden), nn.GELU(), nn.Linear(hidden, lm_hidden))
        self.shuffle_rng = torch.Generator().manual_seed(config.seed)

    # ------------------------------------------------------------------------------------------------ inputs
    def clip_video(self, frames: np.ndarray, timestamps: np.ndarray | None = None) -> Clip:
        c = self.config
        return chunk_video(frames, timestamps, c.fps, c.chunk_frames, c.image_size)

    def clip_image(self, image) -> Clip:
        c = self.config
        return image_to_clip(image, c.image_size, c.chunk_frames, c.max_tiles)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------------------------------------ vision
    def aggregate(self, clips: list[Clip]) -> list[torch.Tensor]:
        """Per clip [N, tokens_per_chunk, vision_hidden]: the aggregator's output for every chunk."""
        for clip in clips:
            if clip.chunk_frames != self.config.chunk_frames or clip.pixels.shape[-1] != self.config.image_size:
                raise ValueError(f"clip has {clip.chunk_frames}-frame chunks of {clip.pixels.shape[-1]}px; the model "
                                 f"expects {self.config.chunk_frames} frames of {self.config.image_size}px")
        pixels = torch.from_numpy(np.concatenate([c.pixels for c in clips])).to(self.device)
        chunk_tokens = self.encoder(pixels)  # [sum N, t, D]
        t = chunk_tokens.shape[1]
        counts = [c.num_chunks for c in clips]
        length = max(counts) * t
        batch, d = len(clips), chunk_tokens.shape[-1]
        tokens = chunk_tokens.new_zeros(batch, length, d)
        positions = torch.zeros(batch, length, dtype=torch.long, device=self.device)
        groups = torch.full((batch, length), -1, dtype=torch.long, device=self.device)
        valid = torch.zeros(batch, length, dtype=torch.bool, device=self.device)
        for i, (clip, per_clip) in enumerate(zip(clips, chunk_tokens.split(counts), strict=True)):
            n = clip.num_chunks * t
            tokens[i, :n] = per_clip.reshape(n, d)
            # RoPE sees only differences: counting from the clip's first chunk keeps angles small (float32) late
            # in long videos without changing any logit
            positions[i, :n] = torch.from_numpy(clip.chunk_index - clip.chunk_index.min()).repeat_interleave(t)
            groups[i, :n] = torch.from_numpy(clip.groups).repeat_interleave(t)
            valid[i, :n] = True
        out = self.aggregator(tokens, positions, groups, valid)
        return [out[i, : n * t].reshape(n, t, d) for i, n in enumerate(counts)]

    def visual_tokens(self, clips: list[Clip]) -> list[torch.Tensor]:
        """Per clip [N * tokens_per_chunk, lm_hidden]: projected tokens in the order the LM reads them."""
        out = []
        for chunks in self.aggregate(clips):
            if self.config.lm_chunk_order == "shuffled":
                chunks = chunks[torch.randperm(len(chunks), generator=self.shuffle_rng).to(chunks.device)]
            out.append(self.projector(chunks.flatten(0, 1)))
        return out

    # ------------------------------------------------------------------------------------------------ text
    def prompt_ids(self, prompt: str) -> list[int]:
        """BOS + prompt ids with exactly one placeholder (prepended when the prompt has none)."""
        text = prompt if self.config.placeholder in prompt else self.config.placeholder + prompt
        ids = [self.bos_id] + self.tokenizer(text, add_special_tokens=False).input_ids
        if ids.count(self.placeholder_id) != 1:
            raise ValueError(f"prompt {prompt!r} must contain the placeholder {self.config.placeholder!r} at most once")
        return ids

    def text_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def prefixes(self, clips: list[Clip], prompts: list[str]) -> list[tuple[list[int], torch.Tensor]]:
        """(prompt ids with one placeholder, the clip's visual tokens) per example."""
        if len(clips) != len(prompts):
            raise ValueError(f"{len(clips)} clips but {len(prompts)} prompts")
        return list(zip([self.prompt_ids(p) for p in prompts], self.visual_tokens(clips), strict=True))

    def batch(self, prefixes: list[tuple[list[int], torch.Tensor]], continuations: list[list[int]]):
        """Right-padded inputs_embeds (the placeholder expanded into the visual tokens), attention mask and labels
        (-100 except on the continuation tokens). One embedding lookup for the whole batch: a lookup per piece
        would cost a dense 32k-row gradient each in the backward pass."""
        rows, spans = [], []
        for (ids, visual), continuation in zip(prefixes, continuations, strict=True):
            at = ids.index(self.placeholder_id)
            prefix = ids[:at] + [self.placeholder_id] * len(visual) + ids[at + 1:]
            rows.append((prefix, continuation))
            spans.append((at, at + len(visual)))
        length = max(len(p) + len(c) for p, c in rows)
        ids = torch.full((len(rows), length), self.eos_id, dtype=torch.long)
        mask = torch.zeros(len(rows), length, dtype=torch.long)
        labels = torch.full((len(rows), length), -100, dtype=torch.long)
        is_visual = torch.zeros(len(rows), length, dtype=torch.bool)
        for i, ((prefix, continuation), (start, stop)) in enumerate(zip(rows, spans, strict=True)):
            n = len(prefix) + len(continuation)
            ids[i, :n] = torch.tensor(prefix + continuation)
            mask[i, :n] = 1
            labels[i, len(prefix):n] = torch.tensor(continuation, dtype=torch.long)
            is_visual[i, start:stop] = True
        device = self.device
        embeds = self.lm.get_input_embeddings()(ids.to(device))
        visual = torch.cat([v for _, v in prefixes]).to(embeds.dtype)
        embeds = embeds.masked_scatter(is_visual.to(device).unsqueeze(-1), visual)
        return embeds, mask.to(device), labels.to(device)

    # ------------------------------------------------------------------------------------------------ API
    def target_logits(self, inputs: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor):
        """Logits only where a label follows ([n, vocab]) and those labels ([n]): the LM head over a 32k vocab is
        most of the cost, and prompt and visual positions need none."""
        hidden = self.lm.base_model(inputs_embeds=inputs, attention_mask=mask).last_hidden_state
        targets = labels[:, 1:]
        where = targets >= 0
        return self.lm.get_output_embeddings()(hidden[:, :-1][where]).float(), targets[where], where

    def forward(self, clips: list[Clip], prompts: list[str], targets: list[str]) -> VideoLMOutput:
        """Mean cross-entropy of each target token (+ EOS) given its clip and prompt; `logits` are those of the
        target tokens only, in order ([n_target_tokens, vocab])."""
        if len(targets) != len(clips):
            raise ValueError(f"{len(clips)} clips but {len(targets)} targets")
        inputs, mask, labels = self.batch(self.prefixes(clips, prompts), [self.text_ids(t) + [self.eos_id]
                                                                          for t in targets])
        logits, wanted, _ = self.target_logits(inputs, mask, labels)
        return VideoLMOutput(nn.functional.cross_entropy(logits, wanted), logits)

    @torch.no_grad()
    def score(self, clips: list[Clip], prompts: list[str], options: list[list[str]],
              normalize: bool = False) -> list[list[float]]:
        """Log-probability of each option text given its clip and prompt (mean per token if `normalize`)."""
        if len(options) != len(clips):
            raise ValueError(f"{len(clips)} clips but {len(options)} option lists")
        prefixes = self.prefixes(clips, prompts)
        rows_prefix, rows_option, shape = [], [], []
        for prefix, opts in zip(prefixes, options, strict=True):
            shape.append(len(opts))
            for option in opts:
                ids = self.text_ids(option)
                if not ids:
                    raise ValueError(f"option {option!r} has no tokens")
                rows_prefix.append(prefix)
                rows_option.append(ids)
        inputs, mask, labels = self.batch(rows_prefix, rows_option)
        logits, wanted, where = self.target_logits(inputs, mask, labels)
        picked = torch.log_softmax(logits, dim=-1).gather(-1, wanted.unsqueeze(-1)).squeeze(-1)
        totals = torch.zeros(where.shape, device=picked.device).masked_scatter(where, picked).sum(-1)
        if normalize:
            totals = totals / where.sum(-1)
        flat = totals.tolist()
        out, at = [], 0
        for n in shape:
            out.append(flat[at: at + n])
            at += n
        return out

    @torch.no_grad()
    def generate(self, clips: list[Clip], prompts: list[str], max_new_tokens: int = 32, num_beams: int = 1) -> list[str]:
        """Greedy (or beam) continuation of each prompt, decoded to text (one clip at a time: no padding)."""
        texts = []
        for prefix in self.prefixes(clips, prompts):
            inputs, _, _ = self.batch([prefix], [[]])
            out = self.lm.generate(inputs_embeds=inputs, attention_mask=torch.ones(inputs.shape[:2], dtype=torch.long,
                                                                                   device=self.device),
                                   max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=False,
                                   eos_token_id=self.eos_id, pad_token_id=self.lm.config.pad_token_id)
            texts.append(self.tokenizer.decode(out[0], skip_special_tokens=True).strip())
        return texts

    # ------------------------------------------------------------------------------------------------ files
    def save(self, folder: str | Path, overwrite: bool = True) -> Path:
        """Weights (safetensors), config.yaml and the tokenizer (with its placeholder), in one atomic folder."""
        from safetensors.torch import save_model

        with atomic.folder(folder, overwrite=overwrite) as tmp:
            save_model(self, str(tmp / WEIGHTS))
            (tmp / CONFIG).write_text(dump_yaml(self.config, "MavorsVideoLM config (mengzi.multimodal.video)"),
                                      encoding="utf-8")
            self.tokenizer.save_pretrained(tmp / TOKENIZER)
            (tmp / "model_info.json").write_text(json.dumps({"parameters": sum(p.numel() for p in self.parameters()),
                                                             "visual_tokens_per_chunk": self.encoder.tokens_per_chunk}),
                                                 encoding="utf-8")
        return Path(folder)

    @classmethod
    def load(cls, folder: str | Path) -> MavorsVideoLM:
        from safetensors.torch import load_model

        from ...tokenizer import load_tokenizer

        folder = Path(folder)
        missing = [name for name in (WEIGHTS, CONFIG, TOKENIZER) if not (folder / name).exists()]
        if missing:
            raise FileNotFoundError(f"{folder}: not a MavorsVideoLM folder (missing {missing})")
        model = cls(load_yaml(VideoLMConfig, folder / CONFIG), tokenizer=load_tokenizer(folder / TOKENIZER))
        load_model(model, str(folder / WEIGHTS))
        return model.eval()
