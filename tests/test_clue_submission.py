"""CLUE submission files: official formats and names, the zip of several run folders, and the validator's exact
complaints, on the fixtures and on every real test file in ../shared/data."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from conftest import need_data
from mengzi.clue.submission import build_submission, predict_name_for, validate_submission, write_predictions
from mengzi.clue.tasks import TASKS, load_file, load_task, task_file

FIXTURES = Path(__file__).parent / "fixtures" / "clue"


def zip_of(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def fixture_run(tmp_path: Path) -> dict[str, str]:
    """Predictions for the three fixture test files, written into one run folder; returns name -> text."""
    run = tmp_path / "run"
    cmnli = load_task("cmnli", "test.json", FIXTURES)
    write_predictions("cmnli", cmnli, [0, 1, 2], run / "predictions", "cmnli_predict.json")
    iflytek = load_task("iflytek", "test.json", FIXTURES)
    write_predictions("iflytek", iflytek, [2, 115, 116], run / "predictions", "iflytek_predict.json")
    chid = load_task("chid", "test.json", FIXTURES)
    write_predictions("chid", chid, [7, 3, 9], run / "predictions", predict_name_for("chid", "test.json", chid))
    return {p.name: p.read_text("utf-8") for p in (run / "predictions").iterdir()}


# ------------------------------------------------------------------------------------------------------- writing


def test_official_formats_per_kind(tmp_path):
    files = fixture_run(tmp_path)
    assert sorted(files) == ["chid10_predict.json", "cmnli_predict.json", "iflytek_predict.json"]
    assert files["cmnli_predict.json"].splitlines() == [
        '{"id": 0, "label": "contradiction"}', '{"id": 1, "label": "entailment"}', '{"id": 2, "label": "neutral"}']
    assert json.loads(files["chid10_predict.json"]) == {"#idiom000200#": 7, "#idiom000201#": 3, "#idiom000202#": 9}
    assert json.loads(files["iflytek_predict.json"].splitlines()[1]) == {"id": 1, "label": "115"}
    tnews = [{"id": 0}, {"id": 1}]
    path = write_predictions("tnews", tnews, [2, 14], tmp_path, "tnews11_predict.json")
    assert path.read_text("utf-8").splitlines() == ['{"id": 0, "label": "102", "label_desc": "news_entertainment"}',
                                                    '{"id": 1, "label": "116", "label_desc": "news_game"}']
    c3 = [{"id": 508, "choices": ["甲", "乙"]}, {"id": 3298, "choices": ["甲", "乙", "丙"]}]
    path = write_predictions("c3", c3, [1, 2], tmp_path, "c310_predict.json")
    assert path.read_text().splitlines() == ['{"id": 508, "label": 1}', '{"id": 3298, "label": 2}']
    cmrc = [{"id": "TEST_0_QUERY_0"}, {"id": "TEST_0_QUERY_1"}]
    path = write_predictions("cmrc2018", cmrc, ["美国海军", "第二艘"], tmp_path, "cmrc2018_predict.json")
    assert json.loads(path.read_text("utf-8")) == {"TEST_0_QUERY_0": "美国海军", "TEST_0_QUERY_1": "第二艘"}
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, renamed


def test_write_predictions_refuses_what_cannot_be_submitted(tmp_path):
    with pytest.raises(ValueError, match="2 predictions for 3 test examples"):
        write_predictions("afqmc", [{"id": 0}, {"id": 1}, {"id": 2}], [0, 1], tmp_path, "afqmc_predict.json")
    with pytest.raises(ValueError, match="afqmc id 1: prediction 2 outside 0..1"):
        write_predictions("afqmc", [{"id": 0}, {"id": 1}], [0, 2], tmp_path, "afqmc_predict.json")
    with pytest.raises(ValueError, match="id 0: prediction 4 outside 0..1"):
        write_predictions("c3", [{"id": 0, "choices": ["a", "b"]}], [4], tmp_path, "c311_predict.json")
    with pytest.raises(ValueError, match="answers must be strings"):
        write_predictions("cmrc2018", [{"id": "q"}], [3], tmp_path, "cmrc2018_predict.json")
    assert not (tmp_path / "afqmc_predict.json").exists()


def test_prediction_names_official_and_fewclue(tmp_path):
    assert predict_name_for("tnews", "x/tnews/test1.0.json") == "tnews10_predict.json"
    assert predict_name_for("cluewsc2020", "test.json") == "cluewsc11_predict.json"
    assert predict_name_for("c3", "c3/test1.1.json") == "c311_predict.json"
    assert predict_name_for("iflytek", "clue/iflytek/test.json") == "iflytek_predict.json"
    assert predict_name_for("iflytek", "fewclue/iflytek/test_public.json") == "iflytekf_predict.json"
    few = tmp_path / "chid/test.json"
    few.parent.mkdir()
    few.write_text(json.dumps({"id": 3000, "candidates": ["甲", "乙"], "content": "#idiom#。"}) + "\n", "utf-8")
    assert predict_name_for("chid", few) == "chidf_predict.json"
    assert predict_name_for("chid", FIXTURES / "chid/test.json") == "chid10_predict.json"
    dataset = load_file("chid", few)
    path = write_predictions("chid", dataset, [1], tmp_path / "out", predict_name_for("chid", few, dataset))
    assert path.read_text() == '{"id": 3000, "answer": 1}\n'
    with pytest.raises(ValueError, match=r"not an official afqmc test file \(known: test.json\)"):
        predict_name_for("afqmc", "afqmc/dev.json")


# ---------------------------------------------------------------------------------------------------------- zips


def test_build_submission_zips_run_folders_and_refuses_duplicates(tmp_path):
    fixture_run(tmp_path)
    other = tmp_path / "other" / "predictions"
    other.mkdir(parents=True)
    (other / "c311_predict.json").write_text('{"id": 0, "label": 1}\n')
    (other / "notes.txt").write_text("not a prediction")
    out = build_submission([tmp_path / "run", tmp_path / "other"], tmp_path / "sub" / "clue.zip")
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == ["c311_predict.json", "chid10_predict.json", "cmnli_predict.json",
                                      "iflytek_predict.json"]
    first = out.read_bytes()
    assert build_submission([tmp_path / "run", tmp_path / "other"], out).read_bytes() == first  # reproducible
    assert [p.name for p in out.parent.iterdir()] == ["clue.zip"]  # no temporary file left
    (other / "cmnli_predict.json").write_text('{"id": 0, "label": "neutral"}\n')
    with pytest.raises(ValueError, match=r"cmnli_predict.json comes from two runs: .*run/predictions/cmnli_predict"
                                         r".json and .*other/predictions/cmnli_predict.json"):
        build_submission([tmp_path / "run", tmp_path / "other"], tmp_path / "dup.zip")
    assert not (tmp_path / "dup.zip").exists()


def test_fixture_round_trip_is_clean(tmp_path):
    fixture_run(tmp_path)
    out = build_submission([tmp_path / "run"], tmp_path / "clue.zip")
    assert validate_submission(out, FIXTURES) == []


CMNLI_OK = '{"id": 0, "label": "neutral"}\n{"id": 1, "label": "entailment"}\n{"id": 2, "label": "neutral"}\n'
TAMPERED = [  # (members, the one expected problem)
    ({"cmnli_predict.json": '{"id": 0, "label": "neutral"}\n{"id": 2, "label": "neutral"}\n'},
     "cmnli_predict.json: 1 id(s) of cmnli/test.json missing: 1"),
    ({"cmnli_predict.json": CMNLI_OK + '{"id": 9, "label": "neutral"}\n'},
     "cmnli_predict.json: 1 id(s) not in cmnli/test.json: 9"),
    ({"cmnli_predict.json": CMNLI_OK.replace('"entailment"', '"entail"')},
     "cmnli_predict.json: 1 label(s) outside cmnli's vocabulary (strings: contradiction, entailment, neutral); "
     'first: id 1: {"id": 1, "label": "entail"}'),
    ({"cmnli_predict.json": '{"id": 1, "label": "neutral"}\n{"id": 0, "label": "neutral"}\n'
                            '{"id": 2, "label": "neutral"}\n'},
     "cmnli_predict.json: out of order vs cmnli/test.json (labels are read by position): 2 line(s) differ; first: "
     "line 1 has id 1 where cmnli/test.json has 0; line 2 has id 0 where cmnli/test.json has 1"),
    ({"cmnli_predict.json": CMNLI_OK + '{"id": 2, "label": "neutral"}\n'},
     "cmnli_predict.json: 1 duplicate id(s): 2"),
    ({"cmnli_predict.json": CMNLI_OK.replace('{"id": 1,', '{"id": "1",')},
     "cmnli_predict.json: ids are str where cmnli/test.json has int (e.g. '1' vs 1)"),
    ({"cmnli_predict.json": '{"id": 0, "label": "neutral"}\n{"id": 1, "label": \n'},
     "cmnli_predict.json: bad JSON at line 2: Expecting value (column 20)"),
    ({"cmnli_predict.json": '{\n "0": "neutral",\n "1": "neutral"\n}\n'},
     "cmnli_predict.json: wrong shape: one JSON object, but this task takes JSON lines {id, label}"),
    ({"chid10_predict.json": '{"id": "#idiom000200#", "label": 1}\n{"id": "#idiom000201#", "label": 1}\n'},
     "chid10_predict.json: wrong shape: JSON lines, but this task takes one JSON object {id: answer}"),
    ({"chid10_predict.json": '{"#idiom000200#": 1, "#idiom000201#": 10, "#idiom000202#": 0}'},
     "chid10_predict.json: 1 label(s) that are not an int index into the question's choices; first: "
     "id '#idiom000201#': 10"),
    ({"cmnli.json": CMNLI_OK}, "cmnli.json: unknown file name (known: afqmc_predict.json, c310_predict.json,"),
    ({"chidf_predict.json": '{"id": 0, "answer": 1}\n'},
     "chidf_predict.json: not a CLUE file (FewCLUE stand-in): CLUE's leaderboard does not score it"),
    ({"sub/cmnli_predict.json": CMNLI_OK}, "sub/cmnli_predict.json: not at the zip root"),
    ({"cmnli_predict.json": ""}, "cmnli_predict.json: no predictions in the file"),
]


@pytest.mark.parametrize("members,problem", TAMPERED)
def test_tampered_zips_get_the_precise_problem(tmp_path, members, problem):
    problems = validate_submission(zip_of(tmp_path / "s.zip", members), FIXTURES)
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_missing_test_file_is_a_warning_and_shape_and_labels_are_still_checked(tmp_path):
    members = {"afqmc_predict.json": '{"id": 0, "label": "0"}\n{"id": 1, "label": "2"}\n'}
    problems = validate_submission(zip_of(tmp_path / "s.zip", members), FIXTURES)
    assert problems[0].startswith("afqmc_predict.json: 1 label(s) outside afqmc's vocabulary (strings: 0, 1)")
    assert problems[1] == f"warning: afqmc_predict.json: no test.json of afqmc under {FIXTURES}; ids not checked " \
                          "(shape and labels were)"
    assert validate_submission(tmp_path / "missing.zip")[0].startswith(f"{tmp_path / 'missing.zip'}: not a readable")
    assert validate_submission(zip_of(tmp_path / "e.zip", {}), FIXTURES) == [f"{tmp_path / 'e.zip'}: the zip is empty"]
    files = {"cmnli_predict.json": str(FIXTURES / "cmnli/test.json")}
    assert validate_submission(zip_of(tmp_path / "o.zip", {"cmnli_predict.json": CMNLI_OK}), tmp_path, files) == []


# ------------------------------------------------------------------------------------ the real releases (../shared)


def real_predictions(task, dataset) -> list:
    if task.kind == "span":
        return [context[:4] for context in dataset["context"]]
    if task.kind == "multiple_choice":
        return [len(choices) - 1 for choices in dataset["choices"]]
    return [i % len(task.labels) for i in range(len(dataset))]


@pytest.fixture(scope="module")
def real_zip(tmp_path_factory) -> Path:
    """Predictions for every real CLUE test file, one run folder a task, zipped."""
    data = need_data("clue")
    out = tmp_path_factory.mktemp("real")
    runs = []
    for task in TASKS.values():
        for test_name in task.test_files:
            path = task_file(task.name, data / "clue", test_name)
            if path is None:
                continue
            dataset = load_file(task.name, path)
            name = predict_name_for(task.name, path, dataset)
            predictions = real_predictions(task, dataset)
            write_predictions(task.name, dataset, predictions, out / task.name / "predictions", name)
            runs.append(out / task.name)
    return build_submission(sorted(set(runs)), out / "clue.zip")


def test_real_round_trip_is_clean(real_zip):
    data = need_data("clue")
    with zipfile.ZipFile(real_zip) as archive:
        assert sorted(archive.namelist()) == sorted([
            "afqmc_predict.json", "iflytek_predict.json", "ocnli_50k_predict.json", "cluewsc11_predict.json",
            "cluewsc10_predict.json", "csl_predict.json", "cmrc2018_predict.json", "c311_predict.json",
            "c310_predict.json"])
    assert validate_submission(real_zip, data / "clue") == []


def test_real_tampered_zip_names_each_problem(real_zip, tmp_path):
    data = need_data("clue")
    with zipfile.ZipFile(real_zip) as archive:
        members = {name: archive.read(name).decode("utf-8") for name in archive.namelist()}
    afqmc = members["afqmc_predict.json"].splitlines()
    members["afqmc_predict.json"] = "\n".join(afqmc[:10] + afqmc[11:]) + "\n"  # id 10 gone
    csl = members["csl_predict.json"].splitlines()
    members["csl_predict.json"] = "\n".join([csl[1], csl[0], *csl[2:]]) + "\n"  # first two lines swapped
    ocnli = members["ocnli_50k_predict.json"]
    members["ocnli_50k_predict.json"] = ocnli.replace('"label": "neutral"}', '"label": "n"}', 1)  # an unknown label
    members["c3_predict.json"] = members.pop("c311_predict.json")
    cmrc = json.loads(members["cmrc2018_predict.json"])
    cmrc.pop("TEST_0_QUERY_0")
    members["cmrc2018_predict.json"] = json.dumps(cmrc, ensure_ascii=False)
    problems = sorted(validate_submission(zip_of(tmp_path / "t.zip", members), data / "clue"))
    assert len(problems) == 5, problems
    assert problems[0] == "afqmc_predict.json: 1 id(s) of afqmc/test.json missing: 10"
    assert problems[1].startswith("c3_predict.json: unknown file name (known: afqmc_predict.json, c310_predict.json, "
                                  "c311_predict.json, chid10_predict.json")
    assert problems[2] == "cmrc2018_predict.json: 1 id(s) of cmrc2018/test.json missing: 'TEST_0_QUERY_0'"
    assert problems[3] == ("csl_predict.json: out of order vs csl/test.json (labels are read by position): 2 line(s) "
                           "differ; first: line 1 has id 2565 where csl/test.json has 2415; line 2 has id 2415 where "
                           "csl/test.json has 2565")
    assert problems[4].startswith("ocnli_50k_predict.json: 1 label(s) outside ocnli's vocabulary (strings: "
                                  'contradiction, entailment, neutral); first: id 2: {"id": 2, "label": "n"}')
