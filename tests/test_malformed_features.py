"""Malformed Oscar region-feature files (.npy, .npz, .safetensors given by the user): NaN or infinite values, the
wrong shape, no regions, non-numeric or pickled arrays, damaged files and folders are a ValueError naming the file
(and, for a bad value, the region and dimension); legal files load unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from mengzi.multimodal.oscar.regions import APPEARANCE_DIM, FEATURE_DIM, load_region_features

SUFFIXES = (".npy", ".npz", ".safetensors")


def save(path, array) -> None:
    if path.suffix == ".npy":
        np.save(path, array, allow_pickle=True)
    elif path.suffix == ".npz":
        np.savez(path, features=array)
    else:
        from safetensors.numpy import save_file

        save_file({"features": np.ascontiguousarray(array)}, str(path))


def good(regions: int = 4) -> np.ndarray:
    rng = np.random.default_rng(0)
    feats = rng.random((regions, FEATURE_DIM), dtype=np.float32)
    return feats


def with_value(value, region: int, dim: int, regions: int = 4) -> np.ndarray:
    feats = good(regions)
    feats[region, dim] = value
    return feats


BAD_VALUES = [(v, r, d) for v in (np.nan, np.inf, -np.inf) for r, d in ((0, 0), (2, 100), (3, APPEARANCE_DIM + 2))]


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("value,region,dim", BAD_VALUES)
def test_non_finite_value_names_file_region_and_dim(tmp_path, suffix, value, region, dim):
    path = tmp_path / f"f{suffix}"
    save(path, with_value(value, region, dim))
    with pytest.raises(ValueError) as err:
        load_region_features(path)
    message = str(err.value)
    assert str(path) in message and f"region {region}," in message and "not a finite number" in message, message
    assert (f"box-geometry dim {dim - APPEARANCE_DIM}" if dim >= APPEARANCE_DIM else f"appearance dim {dim}") \
        in message


def test_a_bad_value_past_max_regions_is_still_refused_and_float64_overflow_is_infinite(tmp_path):
    path = tmp_path / "f.npy"
    np.save(path, with_value(np.nan, 60, 5, regions=64))
    with pytest.raises(ValueError, match=r"region 60, appearance dim 5"):
        load_region_features(path, max_regions=50)
    feats = good().astype(np.float64)
    feats[1, 7] = 1e300  # finite in the file, infinite as the float32 the model reads
    np.save(path, feats)
    with pytest.raises(ValueError, match=r"region 1, appearance dim 7: inf"):
        load_region_features(path)


SHAPES = {"1-d": (FEATURE_DIM,), "3-d": (2, 3, FEATURE_DIM), "appearance-only": (4, APPEARANCE_DIM),
          "transposed": (FEATURE_DIM, 4), "scalar": (), "no-regions": (0, FEATURE_DIM), "no-dims": (4, 0)}


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("shape", SHAPES)
def test_wrong_shape_or_no_regions_names_the_file(tmp_path, suffix, shape):
    path = tmp_path / f"f{suffix}"
    save(path, np.zeros(SHAPES[shape], dtype=np.float32))
    with pytest.raises(ValueError) as err:
        load_region_features(path)
    assert str(path) in str(err.value) and ("2054" in str(err.value) or "no regions" in str(err.value))


@pytest.mark.parametrize("dtype", ["U4", "complex64", "bool", "datetime64[s]"])
def test_non_numeric_array_names_the_file(tmp_path, dtype):
    path = tmp_path / "f.npy"
    np.save(path, np.zeros((4, FEATURE_DIM), dtype=dtype))
    with pytest.raises(ValueError, match=rf"{path}: region features must be numbers"):
        load_region_features(path)


DAMAGED = {
    "truncated-npy": (".npy", lambda good_bytes: good_bytes[: len(good_bytes) // 2]),
    "garbage-npy": (".npy", lambda good_bytes: b"\x93NUMPY garbage"),
    "text-npy": (".npy", lambda good_bytes: b"1,2,3\n"),
    "truncated-npz": (".npz", lambda good_bytes: good_bytes[: len(good_bytes) // 2]),
    "garbage-npz": (".npz", lambda good_bytes: b"PK\x03\x04 not a zip"),
    "truncated-safetensors": (".safetensors", lambda good_bytes: good_bytes[: len(good_bytes) // 2]),
    "garbage-safetensors": (".safetensors", lambda good_bytes: b"\xff" * 64),
    "empty-npy": (".npy", lambda good_bytes: b""),
    "empty-safetensors": (".safetensors", lambda good_bytes: b""),
}


@pytest.mark.parametrize("kind", DAMAGED)
def test_damaged_file_names_the_file(tmp_path, kind):
    suffix, cut = DAMAGED[kind]
    path = tmp_path / f"f{suffix}"
    save(path, good())
    path.write_bytes(cut(path.read_bytes()))
    with pytest.raises(ValueError, match=rf"{path}: cannot read region features"):
        load_region_features(path)


def test_pickles_missing_keys_suffixes_and_folders(tmp_path):
    path = tmp_path / "f.npy"
    np.save(path, np.array([{"features": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=rf"{path}: cannot read region features"):
        load_region_features(path)
    np.savez(tmp_path / "g.npz", feats=good())
    with pytest.raises(ValueError, match=r"g.npz: no array named 'features' \(found \['feats'\]\)"):
        load_region_features(tmp_path / "g.npz")
    from safetensors.numpy import save_file

    save_file({"a": good(), "b": good()}, str(tmp_path / "h.safetensors"))
    with pytest.raises(ValueError, match=r"h.safetensors: no tensor named 'features'"):
        load_region_features(tmp_path / "h.safetensors")
    (tmp_path / "f.txt").write_text("1 2 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"f.txt: region features must be .npy, .npz or .safetensors"):
        load_region_features(tmp_path / "f.txt")
    (tmp_path / "d.npy").mkdir()
    with pytest.raises(ValueError, match=r"d.npy: is a folder"):
        load_region_features(tmp_path / "d.npy")
    with pytest.raises(FileNotFoundError, match=r"absent.npy: no such region-feature file"):
        load_region_features(tmp_path / "absent.npy")


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64", "uint8"])
def test_legal_files_load_unchanged(tmp_path, suffix, dtype):
    path = tmp_path / f"f{suffix}"
    feats = (good(7) * 100).astype(dtype)
    feats[0, :3] = 0  # zeros, extremes of the type and negative appearance values are all legal
    if dtype.startswith("float"):
        feats[1, 5] = -3.5
    save(path, feats)
    regions = load_region_features(path, max_regions=5)
    assert regions.feats.dtype == np.float32 and regions.feats.shape == (5, FEATURE_DIM)
    assert np.array_equal(regions.feats, feats[:5].astype(np.float32))
    assert np.array_equal(regions.boxes, feats[:5, APPEARANCE_DIM:APPEARANCE_DIM + 4].astype(np.float32))
