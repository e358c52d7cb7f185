"""Outputs appear whole or not at all, with the permissions the user's umask gives (tempfile and the safetensors
library create files 0600 whatever the umask: a colleague or a server running as another user could not read
them)."""

from __future__ import annotations

import os
import stat

import pytest
import torch
from safetensors.torch import save_file

from mengzi import atomic


@pytest.fixture(params=[0o022, 0o077, 0o002])
def mask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_umask_is_read_without_changing_it(mask):
    assert atomic.umask() == mask
    assert atomic.umask() == mask


def test_files_and_folders_follow_the_umask(tmp_path, mask):
    atomic.write_text(tmp_path / "a.txt", "x")
    atomic.write_bytes(tmp_path / "b.bin", b"x")
    with atomic.folder(tmp_path / "run") as tmp:
        (tmp / "sub").mkdir()
        save_file({"w": torch.zeros(1)}, str(tmp / "sub" / "model.safetensors"))  # written 0600 by safetensors
        (tmp / "tool.sh").write_text("#!/bin/sh\n")
        os.chmod(tmp / "tool.sh", 0o755)
    assert mode(tmp_path / "a.txt") == mode(tmp_path / "b.bin") == 0o666 & ~mask
    assert mode(tmp_path / "run") == mode(tmp_path / "run" / "sub") == 0o777 & ~mask
    assert mode(tmp_path / "run" / "sub" / "model.safetensors") == 0o666 & ~mask
    assert mode(tmp_path / "run" / "tool.sh") == 0o777 & ~mask  # execute bits kept, still masked


def test_a_failed_folder_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic.folder(tmp_path / "run") as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
