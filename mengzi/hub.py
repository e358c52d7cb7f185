"""`mengzi push RUN REPO_ID`: a run's model/ (weights, tokenizer, model card) to the Hugging Face Hub."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError, option


@dataclass
class PushConfig:
    """`mengzi push RUN REPO_ID`: upload a run's model/ (weights, tokenizer, model card) to the Hugging Face Hub."""

    run: str = option("", "a run folder holding model/ (or a model folder)")
    repo_id: str = option("", "the Hub repository, e.g. you/mengzi-bert-tiny-tnews (created if missing)")
    private: bool = option(False, "create the repository private")
    revision: str = option("", "branch to push to (default: main)")
    message: str = option("", "commit message (default: 'mengzi push <run>')")


def push(cfg: PushConfig) -> str:
    """Upload the model folder with huggingface_hub; offline (HF_HUB_OFFLINE) or without a token, say so."""
    folder = Path(cfg.run) / "model" if (Path(cfg.run) / "model").is_dir() else Path(cfg.run)
    if not folder.is_dir() or not (folder / "README.md").is_file() and not (folder / "config.json").is_file():
        raise ConfigError(f"{cfg.run}: no model to push (a run folder holding model/, or a model folder)")
    if not cfg.repo_id or cfg.repo_id.count("/") != 1:
        raise ConfigError(f"repo_id: give OWNER/NAME, got {cfg.repo_id!r}")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ConfigError("HF_HUB_OFFLINE is set: pushing needs the network (unset it, and log in with `hf auth "
                          "login` or set HF_TOKEN)")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    try:
        api.create_repo(cfg.repo_id, private=cfg.private, exist_ok=True)
        commit = api.upload_folder(folder_path=str(folder), repo_id=cfg.repo_id, revision=cfg.revision or None,
                                   commit_message=cfg.message or f"mengzi push {cfg.run}")
    except (HfHubHTTPError, OSError) as e:  # no token, no permission, no network
        raise ConfigError(f"pushing {folder} to {cfg.repo_id} failed: {e} (log in with `hf auth login` or set "
                          "HF_TOKEN)") from None
    url = getattr(commit, "commit_url", None) or f"https://huggingface.co/{cfg.repo_id}"
    print(f"pushed {folder} -> {url}")
    return url
