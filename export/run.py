"""`mengzi export` and `mengzi predict`: a checkpoint or run folder -> a validated export folder -> predictions.

    mengzi export runs/clue/afqmc --out exports/afqmc --optimize --quantize int8 --check-data dev
    mengzi predict exports/afqmc --text 花呗怎么还款 --text-pair 花呗如何还钱
    mengzi predict exports/reviews --input test.csv --out predictions.jsonl   # {"id", "label", "probabilities", ...}
    mengzi predict exports/afqmc --clue --out predictions/     # the CLUE test files, official format

`--input` reads CSV, TSV or JSONL with the column names the model was fine-tuned on (a `mengzi finetune` run's
`--dataset.text review` is read from `review`; otherwise the record fields of `Predictor`), and writes one JSON line
per record carrying its id (`--id`, else the run's id column, else `id` when the file has one, else the 0-based row
index, as `mengzi finetune` numbers test rows). Every record is checked before anything is predicted or written.

The export folder is written atomically (a temp folder renamed at the end), after both gates passed. Configs are
torch-free so the command line loads fast; the work imports torch only when exporting.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mengzi.config import ConfigError, option

from .session import ExportError

log = logging.getLogger("mengzi.export")
OPTIONAL = ("text_pair", "question")  # record fields a model may go without


@dataclass
class ExportConfig:
    model: str = option("", "a model folder, a `mengzi clue run` / `mengzi finetune` run folder, preset or hub id")
    out: str = option("", "export folder to write")
    task: str = option("auto", "head: auto (from the checkpoint), sequence-classification, multiple-choice, "
                       "question-answering, fill-mask, token-classification, seq2seq-lm, causal-lm")
    optimize: bool = option(False, "fuse attention / LayerNorm / GELU with onnxruntime.transformers (BERT family)")
    quantize: Literal["", "int8"] = option("", "int8: quantise for CPU")
    int8_mode: Literal["dynamic", "static"] = option("dynamic", "int8 activations: scaled at run time (dynamic) or "
                                                     "calibrated on real text (static, needs --check-data)")
    per_channel: bool = option(False, "int8: one weight scale per output channel instead of per tensor")
    fp16: bool = option(False, "fp16 weights and compute (GPU)")
    opset: int = option(17, "ONNX opset")
    dynamo: bool = option(False, "use torch's dynamo exporter (its graph does not fuse; the TorchScript one does)")
    check_data: str = option("", "dev data for the task gate: 'dev' (the run's own dev split) or a file in the "
                             "task's format")
    check_examples: int = option(0, "use only the first N examples of the check data (0: all)")
    min_metric_ratio: float = option(0.99, "task gate: the export must keep at least this share of PyTorch's metric")
    allow_metric_drop: bool = option(False, "write the export even when the task gate fails (it is recorded)")
    tolerance: float = option(0.0, "numeric gate of the final graph: max |onnx - pytorch| (0: per precision, fp32 "
                              "1e-4, fp16 5e-2, int8 1.0)")
    max_seq_len: int = option(0, "sequence length for predictions (0: the run's, else 512)")
    providers: str = option("cpu", "providers the gates run on (auto: TensorRT > CUDA > CPU)")
    data: str = option("", "data folder for data:REL paths (default $DATA or ../shared/data)")
    overwrite: bool = option(False, "replace an existing export folder")


@dataclass
class PredictConfig:
    model: str = option("", "export folder (from `mengzi export`)")
    text: list[str] = option([], "texts to predict (fill-mask: with [MASK]; T5/GPT: prompts)")
    text_pair: list[str] = option([], "second texts of pairs, one per --text")
    question: str = option("", "question answering: the question (--text is the context)")
    choices: list[str] = option([], "multiple choice: the choices (--text is the context)")
    input: str = option("", "a CSV, TSV or JSONL file of records to predict (columns as the model was fine-tuned)")
    format: Literal["auto", "csv", "tsv", "tsv-quoted", "jsonl", "json"] = option(
        "auto", "--input format; auto: by extension (TSV is read without quoting; tsv-quoted: with CSV's quoting)")
    encoding: str = option("utf-8", "--input text encoding (e.g. gbk, gb18030); a UTF-8 BOM is always accepted")
    id: str = option("", "--input: the id column copied into each output (default: the run's id column, else `id` "
                     "when present, else the row index)")
    clue: bool = option(False, "predict the CLUE test files of the export's task, written in the official format")
    data_dir: str = option("", "CLUE root for --clue (default: the run's)")
    out: str = option("", "--input: .jsonl to write (default stdout); --clue: folder for <task>_predict.json")
    providers: str = option("auto", "execution providers (auto: TensorRT > CUDA > CPU; or cpu, cuda, tensorrt)")
    threads: int = option(0, "intra-op threads (0: one per physical core)")
    batch_size: int = option(32, "examples per ONNX Runtime call")
    max_new_tokens: int = option(64, "T5/GPT: tokens to generate")
    num_beams: int = option(1, "T5/GPT: beam width (1: greedy)")
    data: str = option("", "data folder for data:REL paths (default $DATA or ../shared/data)")


# ------------------------------------------------------------------------------------------------------ export
def _source(cfg: ExportConfig) -> tuple[Path, dict]:
    """(model folder, run info) for a model folder, a run folder (holding model/ and run.json) or a hub id. The run
    info is what the run's `run.json` says about its data: `task`, `data_dir`, `files` and `data` of a CLUE run, or
    `dataset` and `data` of a `mengzi finetune` run."""
    from mengzi.engine.runfolder import read_run
    from mengzi.models.load import model_folder

    path = Path(cfg.model)
    if (path / "model" / "config.json").is_file():
        info = read_run(path)
        spec = dict(info.data) if info else {}
        if "clue" in spec:
            spec["task"] = spec.pop("clue")
        if info:  # how the run encoded its data, so predictions encode the same way
            spec |= {"max_seq_len": info.max_seq_len, "doc_stride": info.extra.get("doc_stride"),
                     "max_answer_len": info.extra.get("max_answer_len")}
        return path / "model", {"run": str(path), **spec}
    return model_folder(cfg.model, None), {}


def _check_dataset(cfg: ExportConfig, run: dict, head, labels):
    """The dev set of the task gate, in the shared schema: the run's CLUE task or user data, or a file."""
    from mengzi.data import resolve

    spec = cfg.check_data
    if run.get("task"):  # a CLUE run
        from mengzi.clue.tasks import load_task

        root = Path(resolve(run.get("data_dir") or "data:clue", cfg.data or run.get("data") or None))
        files = {k: str(resolve(v, cfg.data or run.get("data") or None)) for k, v in (run.get("files") or {}).items()}
        if spec != "dev":
            files["dev"] = str(resolve(spec, cfg.data or None))
        return load_task(run["task"], "dev", root, files, limit=cfg.check_examples)
    if run.get("dataset"):  # a `mengzi finetune` run on user data
        from mengzi.config import from_dict
        from mengzi.finetune.userdata import DataFiles, load_user_split

        files = from_dict(DataFiles, run["dataset"])
        path = Path(resolve(files.dev if spec == "dev" else spec, cfg.data or None))
        ds = load_user_split(files, path, labels)
        return ds.select(range(min(cfg.check_examples, len(ds)))) if cfg.check_examples else ds
    raise ConfigError("--check-data needs a run folder (of `mengzi clue run` or `mengzi finetune`) to know the task")


def export_model(cfg: ExportConfig) -> Path:
    from mengzi import atomic

    from . import gates
    from .heads import detect_head, get_head
    from .onnx_export import load_model
    from .session import write_manifest

    if not cfg.model or not cfg.out:
        raise ConfigError("mengzi export MODEL --out DIR")
    if cfg.fp16 and cfg.quantize:
        raise ConfigError("choose one of --fp16 (GPU) and --quantize int8 (CPU)")
    folder, run = _source(cfg)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    head = get_head(detect_head(config) if cfg.task == "auto" else cfg.task)
    if (cfg.optimize or cfg.quantize or cfg.fp16) and head.generative:
        raise ConfigError(f"--optimize/--quantize/--fp16 serve the BERT-family heads; {head.name} exports plain")
    if cfg.int8_mode == "static" and cfg.quantize and not cfg.check_data:
        raise ConfigError("static INT8 calibrates on real text: pass --check-data")
    seq = cfg.max_seq_len or int(run.get("max_seq_len") or 0) or min(512, config.get("max_position_embeddings", 512))
    task_info = {"name": run.get("task") or config.get("mengzi_task"), "kind": head.kind, "max_seq_len": seq,
                 "doc_stride": int(run.get("doc_stride") or 128),
                 "max_answer_len": int(run.get("max_answer_len") or 64),
                 "data_dir": run.get("data_dir"), "files": run.get("files") or {}, **_record_fields(run, head.kind)}
    id2label = config.get("id2label") or {}
    labels = [id2label[str(i)] for i in range(len(id2label))] if head.kind == "classification" or \
        head.kind == "token_classification" else None
    started = time.perf_counter()
    model, tokenizer = load_model(folder, head)
    log.info("exporting %s (%s head) from %s", type(model).__name__, head.name, folder)
    report: dict = {}
    with atomic.folder(cfg.out, overwrite=cfg.overwrite) as tmp:
        tmp = Path(tmp)
        tokenizer.save_pretrained(tmp)
        if not (tmp / "tokenizer.json").is_file():
            raise ExportError(f"{type(tokenizer).__name__} wrote no tokenizer.json; the runtime needs one")
        special = {k: getattr(tokenizer, f"{k}_token_id", None) for k in ("cls", "sep", "pad", "mask", "unk", "eos")}
        manifest = {"head": head.name, "family": _family(config), "source": str(Path(cfg.model).resolve()),
                    "labels": labels, "task": task_info, "special": special, "precision": "fp32",
                    "optimized": bool(cfg.optimize), "opset": cfg.opset, "exporter": "dynamo" if cfg.dynamo
                    else "torchscript"}
        if head.generative:
            from .seq2seq import check_generative, export_generative

            manifest.update(export_generative(model, tmp, opset=cfg.opset, dynamo=cfg.dynamo))
            check = check_generative(model, tmp, manifest, tmp / "tokenizer.json", providers=cfg.providers)
            report["numeric"] = {"fp32": gates.enforce_tolerance(check, "fp32", cfg.tolerance or None)}
        else:
            report = _export_encoder(cfg, model, head, tokenizer, tmp, seq, task_info, manifest, run, labels)
        manifest["gates"] = report
        manifest["export_seconds"] = round(time.perf_counter() - started, 1)
        write_manifest(tmp, manifest)
    sizes = {p.name: f"{p.stat().st_size / 2**20:.1f} MB" for p in sorted(Path(cfg.out).glob("*.onnx"))}
    print(f"{head.name} -> {cfg.out} ({manifest['precision']}{', fused' if cfg.optimize else ''}): "
          f"{', '.join(f'{k} {v}' for k, v in sizes.items())}")
    for gate, result in report.items():
        for precision, r in result.items():
            if gate == "numeric":
                scale = f" x logit scale {r['scale']:.3g}" if r.get("scale", 1.0) > 1 else ""
                print(f"  numeric gate {precision}: max |onnx - pytorch| {r['max_abs_diff']:.3g} "
                      f"(tolerance {r['tolerance']:.3g}{scale}) passed")
            else:
                print(f"  task gate {precision}: {r['metric']} pytorch {r['pytorch'][r['metric']]:.4g} onnx "
                      f"{r['onnx'][r['metric']]:.4g} ratio {r['ratio']:.4f} "
                      f"{'passed' if r['passed'] else 'FAILED (written with --allow-metric-drop)'}")
    return Path(cfg.out)


def _record_fields(run: dict, kind: str) -> dict:
    """What `mengzi predict --input` needs to read records as the run did: record field -> the user's column
    (`fields`), the id column (`id_field`), and whether the model reads pairs (`pair`: a single text given to a pair
    model, or a pair to a single-text one, is refused). Empty for a bare model folder: nothing is known."""
    if run.get("dataset"):  # a `mengzi finetune` run on user data
        from mengzi.config import from_dict
        from mengzi.finetune.userdata import DataFiles

        files = from_dict(DataFiles, run["dataset"])
        names = {"classification": ("text", "text_pair"), "multiple_choice": ("context", "question", "choices"),
                 "span": ("context", "question")}.get(kind, ())
        return {"fields": {n: getattr(files, n) for n in names if getattr(files, n)}, "id_field": files.id or None,
                "pair": bool(files.text_pair) if kind == "classification" else None}
    if run.get("task") and kind == "classification":  # a CLUE run: the shared schema's names
        from mengzi.clue.examples import TEXT_FIELDS

        return {"pair": run["task"] == "csl" or TEXT_FIELDS.get(run["task"], (None, None))[1] is not None}
    return {}


def _family(config: dict) -> str:
    return {"bert": "bert", "t5": "t5", "gpt_neo": "gpt-neo"}.get(config.get("model_type"), config.get("model_type"))


def _export_encoder(cfg, model, head, tokenizer, tmp: Path, seq: int, task_info: dict, manifest: dict, run: dict,
                    labels) -> dict:
    from . import gates, optimize
    from .onnx_export import export_encoder
    from .session import make_session

    final = "fp16" if cfg.fp16 else "int8" if cfg.quantize else "fp32"
    raw = tmp / ("model.unfused.onnx" if cfg.optimize else "model.onnx")
    export_encoder(model, head, raw, opset=cfg.opset, dynamo=cfg.dynamo)
    numeric = {}

    def check(path: Path, precision: str, label: str):
        session = make_session(path, cfg.providers)
        tol = (cfg.tolerance or None) if precision == final else None  # --tolerance is the final graph's
        numeric[label] = gates.numeric_gate(model, head, session, tokenizer, precision, tol, seq,
                                            task_info["doc_stride"])
        return session

    check(raw, "fp32", "fp32")
    current = raw
    if cfg.optimize:
        c = model.config
        fused = tmp / "model.onnx"
        manifest["fusion"] = optimize.fuse(raw, fused, c.num_attention_heads, c.hidden_size, c.num_hidden_layers)
        check(fused, "fp32", "fp32-fused")
        current = fused
    dataset = None
    if cfg.check_data:
        if head.kind not in ("classification", "multiple_choice", "span"):
            raise ConfigError(f"the task gate serves classification, multiple choice and span heads, not {head.kind}")
        dataset = _check_dataset(cfg, run, head, labels)
    if cfg.fp16 or cfg.quantize:
        precision = "fp16" if cfg.fp16 else "int8"
        reduced = tmp / f"model.{precision}.onnx"
        if cfg.fp16:
            optimize.to_fp16(current, reduced)
        else:
            calibration = _calibration(head, dataset, tokenizer, seq, task_info) if cfg.int8_mode == "static" else None
            optimize.quantize_int8(current, reduced, cfg.int8_mode, cfg.per_channel, calibration)
        check(reduced, precision, precision)
        if current.name == "model.onnx":
            current.unlink()
        current = reduced.rename(tmp / "model.onnx")
        manifest.update(precision=precision, int8={"mode": cfg.int8_mode, "per_channel": cfg.per_channel}
                        if cfg.quantize else None)
    files = {"model": "model.onnx"}
    if cfg.optimize:
        files["unfused"] = "model.unfused.onnx"  # TensorRT takes the plain graph
    manifest["files"] = files
    report = {"numeric": numeric}
    if dataset is not None:
        report["task"] = {manifest["precision"]: _task_gate(cfg, model, head, tokenizer, dataset, tmp, manifest,
                                                            task_info)}
    return report


def _calibration(head, dataset, tokenizer, seq: int, task_info: dict, batches: int = 32, batch_size: int = 8):
    from mengzi.finetune import encoding

    from .predictor import pad_batch

    if dataset is None:
        raise ConfigError("static INT8 calibrates on real text: pass --check-data")
    encoded = encoding.encode(head.kind, dataset, tokenizer, seq, task_info["doc_stride"])
    feats = encoded.features[: batches * batch_size]
    pad = tokenizer.pad_token_id or 0
    return [pad_batch(feats[i : i + batch_size], pad) for i in range(0, len(feats), batch_size)]


def _task_gate(cfg, model, head, tokenizer, dataset, tmp: Path, manifest: dict, task_info: dict) -> dict:
    from mengzi.finetune.metrics import metric_for_kind

    from . import gates
    from .predictor import Predictor
    from .session import write_manifest

    metric, main = metric_for_kind(head.kind)
    reference = metric(gates.torch_predictions(model, head, dataset, tokenizer, task_info["max_seq_len"],
                                               task_info["doc_stride"], task_info["max_answer_len"]), dataset)
    write_manifest(tmp, manifest)  # the Predictor reads the folder as users will
    onnx_predictions, _ = Predictor(tmp, providers=cfg.providers).predict_dataset(dataset)
    return gates.task_gate(reference, metric(onnx_predictions, dataset), main, manifest["precision"],
                           cfg.min_metric_ratio, cfg.allow_metric_drop) | {"examples": len(dataset)}


# ----------------------------------------------------------------------------------------------------- predict
def predict(cfg: PredictConfig):
    from .predictor import Predictor

    if not cfg.model:
        raise ConfigError("mengzi predict EXPORT_DIR --text ... (or --input FILE, or --clue)")
    predictor = Predictor(cfg.model, providers=cfg.providers, threads=cfg.threads, batch_size=cfg.batch_size,
                          max_new_tokens=cfg.max_new_tokens, num_beams=cfg.num_beams)  # encoder heads ignore these
    if cfg.clue:
        return predict_clue(predictor, cfg)
    ids, records = _input_records(cfg, predictor) if cfg.input else (None, _records(cfg, predictor))
    started = time.perf_counter()
    results = predictor.predict(records)
    seconds = time.perf_counter() - started
    if ids is not None:
        results = [{"id": i, **r} for i, r in zip(ids, results)]
    emit_json_lines(results, cfg.out, "predictions", f" ({len(results) / max(seconds, 1e-9):.1f}/s)")
    return results


def emit_json_lines(rows: list[dict], out: str, what: str, note: str = "") -> None:
    """`rows` as JSON lines: written atomically to `out` (with a one-line summary), or printed when `out` is empty."""
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    if out:
        from mengzi import atomic

        atomic.write_text(out, "\n".join(lines) + "\n")
        print(f"{len(rows)} {what} -> {out}{note}")
    else:
        print("\n".join(lines))


def _input_records(cfg: PredictConfig, predictor) -> tuple[list, list[dict]]:
    """(ids, records) of `--input`, read with the fine-tuned column names and all checked before any prediction:
    a bad record is a DataError naming file, line and column."""
    from mengzi.tabular import DataError, read_records

    rows = read_records(cfg.input, cfg.format, cfg.encoding)  # never empty
    info = predictor.manifest.get("task") or {}
    id_field = cfg.id or info.get("id_field") or ("id" if "id" in rows[0][1] else "")
    names = predictor.fields  # record field -> the file's column
    ids, records = [], []
    for index, (line, row) in enumerate(rows):
        where = f"{cfg.input}:{line}"
        if id_field and row.get(id_field) in (None, ""):
            raise DataError(f"{where}: field {id_field!r} (the id) is missing or empty; columns: {sorted(row)}")
        record = {}
        for field, column in names.items():
            required = field not in OPTIONAL or (field == "text_pair" and predictor.pair)
            columns = column.split(",") if field == "choices" else [column]  # choices may span columns A,B,C,D
            missing = [c for c in columns if c not in row]
            if missing and required:
                raise DataError(f"{where}: field {missing[0]!r} is missing; columns here: {sorted(row)}")
            if missing or (not required and row[column] == ""):  # an empty optional cell: CSV's way to leave it out
                continue
            record[field] = [row[c] for c in columns] if len(columns) > 1 else row[column]
        if isinstance(record.get("choices"), str):  # a CSV cell holding a JSON list
            try:
                record["choices"] = json.loads(record["choices"])
            except (json.JSONDecodeError, RecursionError):
                raise DataError(f"{where}: field {names['choices']!r}: expected a JSON list of choices") from None
        try:
            predictor.validate(record, names)
        except ValueError as e:
            raise DataError(f"{where}: {e}") from None
        ids.append(row[id_field] if id_field else index)
        records.append(record)
    return ids, records


def _records(cfg: PredictConfig, predictor) -> list[dict]:
    """Records from --text (and --text-pair, --question, --choices)."""
    if not cfg.text:
        raise ConfigError("give --text (or --input FILE, or --clue)")
    kind = predictor.head.kind
    if kind == "span":
        return [{"question": cfg.question, "context": t} for t in cfg.text]
    if kind == "multiple_choice":
        return [{"context": t, "choices": list(cfg.choices)} for t in cfg.text]
    if cfg.text_pair and len(cfg.text_pair) != len(cfg.text):
        raise ConfigError(f"{len(cfg.text)} --text but {len(cfg.text_pair)} --text-pair")
    if kind == "classification" and predictor.pair and not cfg.text_pair:
        raise ConfigError("this model was fine-tuned on pairs of texts: give a --text-pair for each --text")
    if kind == "classification" and predictor.pair is False and cfg.text_pair:
        raise ConfigError("this model was fine-tuned on single texts: drop --text-pair")
    pairs = cfg.text_pair or [None] * len(cfg.text)
    records = [{"text": t} | ({"text_pair": p} if p else {}) for t, p in zip(cfg.text, pairs)]
    for i, r in enumerate(records):
        try:
            predictor.validate(r)
        except ValueError as e:
            raise ConfigError(f"--text {i + 1}: {e}") from None
    return records


def predict_clue(predictor, cfg: PredictConfig) -> list[Path]:
    """Every CLUE test file of the export's task, predicted and written as `mengzi clue run` writes them."""
    from mengzi.clue.submission import predict_name_for, write_predictions
    from mengzi.clue.tasks import get_task, load_task, task_file

    from mengzi.data import resolve

    info = predictor.manifest.get("task") or {}
    if not info.get("name"):
        raise ConfigError(f"{cfg.model} was not exported from a CLUE run (its manifest names no task)")
    task = get_task(info["name"])
    root = Path(resolve(cfg.data_dir or info.get("data_dir") or "data:clue", cfg.data or None))
    files = {k: str(resolve(v, cfg.data or None)) for k, v in (info.get("files") or {}).items()}
    out = Path(cfg.out or "predictions")
    written = []
    for name in task.test_files:
        path = Path(files[name]) if name in files else task_file(task.name, root, name)
        if path is None or not path.is_file():
            continue
        dataset = load_task(task.name, name, root, files)
        started = time.perf_counter()
        predictions, _ = predictor.predict_dataset(dataset)
        seconds = time.perf_counter() - started
        written.append(write_predictions(task.name, dataset, predictions, out,
                                         predict_name_for(task.name, path, dataset)))
        print(f"{task.name} {name}: {len(dataset)} examples in {seconds:.1f}s -> {written[-1]}")
    if not written:
        raise FileNotFoundError(f"no {task.name} test file under {root / task.name} ({', '.join(task.test_files)})")
    return written
