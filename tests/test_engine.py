"""The engine on a toy stage: early stopping on the dev metric, the kept best model, trackers, kept checkpoints,
a full disk while checkpointing, and one optimizer.step() in the code base."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from mengzi.engine import loop, runfolder
from mengzi.engine.args import TrainArgs

REPO = Path(__file__).resolve().parents[1]


class Toy(loop.Stage):
    """A linear classifier on a fixed random problem; `scores` scripts the dev metric of each evaluation."""

    name, main_metric, eval_split = "toy", "acc", "dev"

    def __init__(self, scores: list[float] | None = None):
        torch.manual_seed(0)
        super().__init__(torch.nn.Linear(4, 2))
        self.x = torch.randn(64, 4)
        self.y = (self.x[:, 0] > 0).long()
        self.steps_per_epoch = 8
        self.scores, self.saved = list(scores or []), []

    def micro_batches(self, run):
        at = (run.step % 8) * 8
        return [loop.Micro((self.x[at:at + 4], self.y[at:at + 4]), 4, 4),
                loop.Micro((self.x[at + 4:at + 8], self.y[at + 4:at + 8]), 4, 4)]

    def loss(self, run, batch):
        return torch.nn.functional.cross_entropy(run.model(batch[0]), batch[1]), {}

    def evaluate(self, run):
        if self.scores:
            return {"acc": self.scores.pop(0)}
        return {"acc": float((run.model(self.x).argmax(-1) == self.y).float().mean())}

    def save_model(self, run, folder):
        self.saved.append(run.step)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(run.unwrapped.state_dict(), folder / "toy.pt")


def _train(stage, tmp_path, **args):
    args = TrainArgs(**{"epochs": 4, "batch_size": 8, "micro_batch_size": 4, "lr": 0.1, "log_every": 2,
                        "mixed_precision": "no", **args})
    return loop.train(stage, args, tmp_path, loop.make_accelerator(args, tmp_path), resume=False,
                      info=runfolder.RunInfo("toy", task="toy"))


def test_early_stopping_keeps_the_best_model_and_says_why(tmp_path, caplog):
    stage = Toy(scores=[0.5, 0.7, 0.6, 0.65, 0.9])  # one evaluation per epoch of 8 steps
    with caplog.at_level("INFO", logger="mengzi"):
        state = _train(stage, tmp_path, epochs=5, early_stopping_patience=2)
    assert state["step"] == 32 and stage.saved == [8, 16]  # stopped after 2 evaluations without a better acc
    assert state["best"]["acc"] == 0.7 and state["best"]["step"] == 16
    assert "early stopping at step 32" in caplog.text
    rows = runfolder.MetricsLog(tmp_path / "metrics.jsonl").rows()
    assert [r["step"] for r in rows if r["split"] == "dev"] == [8, 16, 24, 32]
    assert [r["step"] for r in rows if r["split"] == "train"] == list(range(2, 33, 2))
    assert [r["samples_seen"] for r in rows if r["split"] == "train"] == list(range(16, 257, 16))
    assert state["samples_seen"] == 32 * 8 and state["tokens_seen"] == 32 * 8
    info = runfolder.read_run(tmp_path)
    assert info.status == "finished" and (tmp_path / "curves.png").is_file()
    assert not (tmp_path / "checkpoints").exists()  # the optimizer state goes when the run finishes
    card = (tmp_path / "model" / "README.md").read_text()
    assert "toy" in card and '"acc": 0.7' in card and '"adam_epsilon": 1e-08' in card


def test_keep_checkpoints_keeps_the_last_one_and_tensorboard_gets_the_metrics(tmp_path):
    pytest.importorskip("tensorboardX")  # installed by the dev extra (constraints.txt)
    _train(Toy(), tmp_path, epochs=2, save_every=4, keep_checkpoints=True, report_to=["tensorboard"])
    assert [p.name for p in loop.checkpoints(tmp_path / "checkpoints")] == ["step-00000016"]
    events = list(tmp_path.rglob("events.out.tfevents.*"))
    assert events and any(b"train/loss" in e.read_bytes() and b"dev/acc" in e.read_bytes() for e in events)


def test_a_full_disk_while_checkpointing_names_it_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from accelerate import Accelerator

    from mengzi.atomic import DiskFullError

    real = Accelerator.save_state

    def fills_the_disk(self, output_dir, **kw):
        if output_dir.endswith("step-00000008"):
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            (Path(output_dir) / "model.safetensors").write_bytes(b"\0" * 1000)
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4160 vs 4050")
        return real(self, output_dir, **kw)

    monkeypatch.setattr(Accelerator, "save_state", fills_the_disk)
    with pytest.raises(DiskFullError, match=r"no space left on device writing .*step-00000008.*the last complete "
                                            r"checkpoint is .*step-00000004.*--resume"):
        _train(Toy(), tmp_path, epochs=2, save_every=4)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-00000004"]  # no partial one left


def test_optimizer_step_is_written_once_in_the_code_base():
    sources = [p for d in ("mengzi", "clue", "export") for p in (REPO / d).rglob("*.py")]
    calls = [p.relative_to(REPO) for p in sources if re.search(r"optimizer\.step\(\)", p.read_text(encoding="utf-8"))]
    assert calls == [Path("mengzi/engine/loop.py")]
    outside = [p.relative_to(REPO) for p in sources if "pretrain" not in p.parts
               and re.search(r"(from|import) (\.+|mengzi\.)pretrain\b", p.read_text(encoding="utf-8"))]
    assert outside == [Path("mengzi/cli.py")], outside  # the command table names the command, nothing else


def test_sop_accuracy_averages_only_batches_that_hold_a_pair():
    from mengzi.pretrain.objectives.sop import SentenceOrder

    class Heads:
        seq_relationship = torch.nn.Linear(8, 2)

    class Model:
        cls = Heads()

    class Out:
        pooler_output = torch.randn(3, 8)

    class StepStub:
        model, encoder = Model(), Out()
        batch = {"sop_label": torch.tensor([-100, -100, -100])}

    loss, metrics = SentenceOrder.loss(object.__new__(SentenceOrder), StepStub())
    assert metrics == {} and float(loss.detach()) == 0.0  # no accuracy of 0 averaged in


def test_push_uploads_the_model_folder_with_its_card_and_says_why_not_offline(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    from mengzi.cli import main

    _train(Toy(), tmp_path / "run", epochs=1)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["push", str(tmp_path / "run"), "me/toy"]) == 2
    assert "HF_HUB_OFFLINE is set" in capsys.readouterr().err
    calls = []

    class FakeApi:
        def create_repo(self, repo_id, **kw):
            calls.append(("create", repo_id, kw))

        def upload_folder(self, folder_path, repo_id, **kw):
            calls.append(("upload", repo_id, sorted(p.name for p in Path(folder_path).iterdir())))

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    assert main(["push", str(tmp_path / "run"), "me/toy", "--private"]) == 0
    assert calls == [("create", "me/toy", {"private": True, "exist_ok": True}), ("upload", "me/toy", ["README.md",
                                                                                                     "toy.pt"])]
    assert main(["push", str(tmp_path / "run"), "not-a-repo-id"]) == 2


def test_run_info_of_a_folder_written_before_run_json_comes_from_its_config(tmp_path):
    (tmp_path / "clue").mkdir()
    (tmp_path / "clue" / "config.yaml").write_text("task: afqmc\ndata_dir: data:clue\nfiles: {}\ndata: ''\n")
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "config.yaml").write_text("dataset:\n  kind: classification\n  text: review\n")
    assert runfolder.read_run(tmp_path / "clue").data == {"clue": "afqmc", "data_dir": "data:clue", "files": {},
                                                          "data": ""}
    assert runfolder.read_run(tmp_path / "user").data["dataset"]["text"] == "review"
    assert runfolder.read_run(tmp_path) is None
    runfolder.write_run(tmp_path, runfolder.RunInfo("finetune", task="t", labels=["a", "b"]))
    assert runfolder.read_run(tmp_path).labels == ["a", "b"]
