"""The corpus pipeline: documents and their counts, document-aware packing, the cache and the streaming mode."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from mengzi.pretrain.corpus import CorpusConfig, Documents, cached_split, held_out, streaming_split
from mengzi.pretrain.packing import ChunkPacker, SegmentPairPacker
from mengzi.textfiles import Source
from mengzi.tokenizer.normalize import NormalizerConfig


@pytest.fixture(scope="module")
def bert_tokenizer(data):
    from mengzi.tokenizer import load_tokenizer

    return load_tokenizer(data / "vocab/google_zh_vocab.txt")


def _corpus(tmp_path, **kw) -> CorpusConfig:
    (tmp_path / "a.txt").write_text("第一篇文章。它有两句话！\n\n短\n第一篇文章。它有两句话！\n" + "长" * 50 + "\n",
                                    encoding="utf-8")
    (tmp_path / "b.jsonl").write_text('{"text": "ＡＢＣ全角，繁體字。"}\n{"txt": "坏记录"}\nnot json\n', encoding="utf-8")
    (tmp_path / "c.txt").write_bytes("坏字节\xff结尾。".encode("utf-8", "surrogateescape") + b"\xff\n")
    sources = [Source(path=str(tmp_path / "a.txt")), Source(path=str(tmp_path / "b.jsonl")),
               Source(path=str(tmp_path / "c.txt"))]
    return CorpusConfig(sources=sources, eval_fraction=0.0, min_chars=2, max_chars=20, **kw)


def test_documents_are_cleaned_and_every_drop_is_counted(tmp_path):
    docs = Documents(_corpus(tmp_path), "train")
    out = list(docs.iter())
    s = docs.stats
    assert out[0] == "第一篇文章。它有两句话!"  # full-width "！" normalised
    assert "ABC全角,繁体字。" in out  # full-width to half-width, traditional to simplified
    assert (s.files, s.empty, s.too_short, s.duplicates, s.bad_records, s.undecodable_lines) == (3, 1, 1, 1, 2, 1)
    assert s.oversized == 1 and out.count("长" * 20) == 2 and "长" * 10 in out  # 50 chars -> 20 + 20 + 10
    assert s.documents == len(out) and s.chars == sum(map(len, out))
    assert any("b.jsonl:2: field 'text'" in p for p in s.problems) and any("b.jsonl:3" in p for p in s.problems)


def test_held_out_slice_is_stable_and_disjoint(tmp_path):
    texts = [f"第{i}号文档的内容。" for i in range(2000)]
    (tmp_path / "many.txt").write_text("\n".join(texts), encoding="utf-8")
    cfg = CorpusConfig(sources=[Source(path=str(tmp_path / "many.txt"))], eval_fraction=0.05,
                       normalize=NormalizerConfig.off())
    train, evaluation = list(Documents(cfg, "train").iter()), list(Documents(cfg, "eval").iter())
    assert not set(train) & set(evaluation) and len(train) + len(evaluation) == 2000
    assert 50 < len(evaluation) < 150  # ~5%
    assert evaluation == [t for t in texts if held_out(t, 0.05)]


def test_segment_pairs_stay_inside_a_document_and_sop_swaps_half(bert_tokenizer):
    # two documents with disjoint characters: no example may mix them
    doc_a = "".join(f"甲乙丙丁{i % 10}号。" for i in range(60))
    doc_b = "".join(f"子丑寅卯{i % 10}号！" for i in range(60))
    packer = SegmentPairPacker(bert_tokenizer, max_seq_len=32, sentence_order=True, segmenter="jieba")
    out = packer({"text": [doc_a, doc_b] * 20}, [0])
    a_ids = set(bert_tokenizer("甲乙丙丁", add_special_tokens=False)["input_ids"])
    b_ids = set(bert_tokenizer("子丑寅卯", add_special_tokens=False)["input_ids"])
    labels = Counter(out["sop_label"])
    for ids, types in zip(out["input_ids"], out["token_type_ids"]):
        assert len(ids) <= 32 and ids[0] == bert_tokenizer.cls_token_id and ids[-1] == bert_tokenizer.sep_token_id
        assert not (set(ids) & a_ids and set(ids) & b_ids)
        assert len(types) == len(ids) and types[0] == 0
    assert 0.35 < labels[1] / (labels[0] + labels[1]) < 0.65


def test_word_starts_follow_jieba_words_and_pos_tags_align(bert_tokenizer):
    packer = SegmentPairPacker(bert_tokenizer, max_seq_len=64, short_seq_prob=0.0, tag_schemes=("pos",))
    out = packer({"text": ["我爱北京天安门。"]}, [0])
    ids, starts, pos = out["input_ids"][0], out["word_start"][0], out["pos_ids"][0]
    assert bert_tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", "我", "爱", "北", "京", "天", "安", "门", "。", "[SEP]"]
    assert starts == [1, 1, 1, 1, 0, 1, 0, 0, 1, 1]  # 我 / 爱 / 北京 / 天安门 / 。
    from mengzi.pretrain.linguistic import TAG_SCHEMES

    labels = TAG_SCHEMES["pos"].labels
    assert pos[0] == pos[-1] == -100
    assert [labels[i] for i in pos[1:-1]] == ["r", "v", "n", "n", "n", "n", "n", "x"]


def test_chunks_are_eos_separated_and_exactly_sized(t5_tokenizer_dir):
    from mengzi.tokenizer import load_tokenizer

    tok = load_tokenizer(t5_tokenizer_dir, kind="t5")
    packer = ChunkPacker(tok, chunk_len=16)
    docs = ["今天天气很好。", "我们去公园散步吧。", "明天见。"] * 5
    out = packer({"text": docs}, [0])
    flat = [t for chunk in out["input_ids"] for t in chunk]
    assert all(len(c) == 16 for c in out["input_ids"])
    assert flat.count(tok.eos_token_id) >= len(flat) // 12  # one EOS after every document
    first = tok(docs[0], add_special_tokens=False)["input_ids"]
    assert flat[: len(first) + 1] == [*first, tok.eos_token_id]


def test_cache_is_reused_and_invalidated_and_streaming_packs_the_same(tmp_path, bert_tokenizer):
    lines = [f"第{i}篇。这是一个用来测试缓存的句子，编号{i}。再来一句话。" for i in range(300)]
    (tmp_path / "c.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = CorpusConfig(sources=[Source(path=str(tmp_path / "c.txt"))], eval_fraction=0.0,
                       cache_dir=str(tmp_path / "cache"))
    packer = SegmentPairPacker(bert_tokenizer, max_seq_len=48, sentence_order=True)
    first, stats = cached_split(cfg, "train", packer)
    assert stats.documents == 300 and len(first) > 0
    again, stats2 = cached_split(cfg, "train", packer)
    assert stats2 == stats and again["input_ids"] == first["input_ids"]
    assert len(os.listdir(tmp_path / "cache")) == 1
    os.utime(tmp_path / "c.txt", ns=(1, 1))  # a changed file is a new corpus
    cached_split(cfg, "train", packer)
    assert len(os.listdir(tmp_path / "cache")) == 2
    stream, live = streaming_split(cfg, "train", packer, seed=0)
    stream.set_epoch(0)
    streamed = [tuple(e["input_ids"]) for e in stream]
    assert Counter(streamed) == Counter(map(tuple, first["input_ids"]))  # same examples, shuffled
    assert streamed != [tuple(x) for x in first["input_ids"]]
    assert live.documents == 300
    stream.set_epoch(0)
    assert [tuple(e["input_ids"]) for e in stream] == streamed  # deterministic by seed and epoch


def test_example_order_resumes_mid_epoch_in_both_modes(tmp_path, bert_tokenizer):
    import itertools

    from mengzi.pretrain.batches import StepBatches, example_order

    lines = [f"第{i}篇文章的第一句。第二句在这里，编号{i}！" for i in range(120)]
    (tmp_path / "o.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = CorpusConfig(sources=[Source(path=str(tmp_path / "o.txt"))], eval_fraction=0.0,
                       cache_dir=str(tmp_path / "cache"), shuffle_buffer=50)
    packer = SegmentPairPacker(bert_tokenizer, max_seq_len=32)
    cached, _ = cached_split(cfg, "train", packer)
    stream, _ = streaming_split(cfg, "train", packer, seed=3)
    n = len(cached)
    for dataset, streaming in ((cached, False), (stream, True)):
        key = lambda e: tuple(e["input_ids"])  # noqa: E731
        whole = [key(e) for e in itertools.islice(example_order(dataset, streaming, seed=3), 2 * n + 7)]
        assert sorted(whole[:n]) == sorted(whole[n : 2 * n]) and whole[:n] != whole[n : 2 * n]  # reshuffled epochs
        for start in (5, n - 1, n + 3):
            tail = [key(e) for e in itertools.islice(example_order(dataset, streaming, seed=3, start=start), 2 * n + 7 - start)]
            assert tail == whole[start:]
    # a step's examples split over 2 processes are the 1-process step's examples, in order
    one = StepBatches(example_order(cached, False, seed=3), 8, 4, rank=0, world=1).next_step()
    halves = [StepBatches(example_order(cached, False, seed=3), 8, 4, rank=r, world=2).next_step() for r in (0, 1)]
    assert [e["input_ids"] for mb in one for e in mb] == [e["input_ids"] for h in halves for mb in h for e in mb]


def test_an_empty_split_is_an_empty_dataset_not_a_crash(tmp_path, bert_tokenizer):
    (tmp_path / "t.txt").write_text("只有一篇文档。\n", encoding="utf-8")
    cfg = CorpusConfig(sources=[Source(path=str(tmp_path / "t.txt"))], eval_fraction=0.0,
                       cache_dir=str(tmp_path / "cache"))
    evaluation, stats = cached_split(cfg, "eval", SegmentPairPacker(bert_tokenizer, max_seq_len=32))
    assert len(evaluation) == 0 and stats.documents == 0
