"""reviewlstm.fingerprint, storage and paths: what decides reuse, atomic outputs, the raw file.

Plain functions, no Prefect: content digests, code digests that ignore comments and docstrings,
stage keys, folders published atomically and checked against their record, and where the raw
reviews file is looked for.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from reviewlstm import fingerprint, paths, storage
from reviewlstm.config import CleanConfig, PruneConfig
from reviewlstm.errors import InputError

# --- fingerprint: files and folders ------------------------------------------------------------


def test_file_digest_is_the_sha256_of_the_bytes(tmp_path):
    data = os.urandom(3 * fingerprint.CHUNK + 17)  # several read chunks
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert fingerprint.file_digest(path) == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert fingerprint.file_digest(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def make_tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "b.txt").write_text("beta")
    return root


def test_dir_digest_depends_on_names_and_contents_only(tmp_path):
    one, two = make_tree(tmp_path / "one"), make_tree(tmp_path / "two")
    base = fingerprint.dir_digest(one)
    assert fingerprint.dir_digest(two) == base  # same content elsewhere
    os.utime(two / "a.txt", (1, 1))
    assert fingerprint.dir_digest(two) == base  # timestamps do not count

    (two / "a.txt").write_text("alphA")
    assert fingerprint.dir_digest(two) != base
    (two / "a.txt").write_text("alpha")
    assert fingerprint.dir_digest(two) == base

    (two / "sub" / "b.txt").rename(two / "sub" / "c.txt")
    assert fingerprint.dir_digest(two) != base
    (two / "sub" / "c.txt").rename(two / "b.txt")  # same name, other folder
    assert fingerprint.dir_digest(two) != base
    (two / "b.txt").rename(two / "sub" / "b.txt")
    assert fingerprint.dir_digest(two) == base

    (two / "extra").write_text("")
    assert fingerprint.dir_digest(two) != base
    assert fingerprint.dir_digest(two, skip=["extra"]) == base


# --- fingerprint: code -------------------------------------------------------------------------

MODULE = '''"""Module docstring."""
import math


class Scaler:
    """Class docstring."""

    def scale(self, x):
        """Method docstring."""
        return x * 2  # a comment


def area(r):
    "Function docstring."
    return math.pi * r ** 2
'''


@pytest.fixture
def temp_module(tmp_path, monkeypatch, request):
    """A module on sys.path that nothing imports; write(source) rewrites it with a new mtime."""
    name = "fp_probe_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:10]
    path = tmp_path / f"{name}.py"
    path.write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    clock = [1_700_000_000]

    def write(source: str) -> str:
        path.write_text(source)
        clock[0] += 10  # module_digest caches on (path, mtime_ns, size): make the edit visible
        os.utime(path, (clock[0], clock[0]))
        return fingerprint.module_digest(name)

    write.name = name
    return write


def test_module_digest_ignores_comments_docstrings_and_blank_lines(temp_module):
    base = temp_module(MODULE)
    assert temp_module.name not in sys.modules  # found without importing
    assert temp_module(MODULE.replace("# a comment", "# another, longer comment")) == base
    assert temp_module("# header comment\n\n" + MODULE + "\n\n# trailing\n") == base
    assert temp_module(MODULE.replace('"""Method docstring."""', '"""Reworded: doubles x."""')) == base
    assert temp_module(MODULE.replace('"""Module docstring."""\n', "")) == base
    assert temp_module(MODULE.replace('    """Class docstring."""\n', "")) == base
    assert temp_module(MODULE.replace('    "Function docstring."\n', "")) == base


@pytest.mark.parametrize(
    "old, new",
    [
        ("x * 2", "x * 3"),
        ("math.pi * r ** 2", "math.pi * r * r"),
        ("def area(r):", "def area(radius=1):\n    r = radius"),
        ("import math", "import math as m\nmath = m"),
        ("return x * 2", "y = 'not a docstring'\n        return x * 2"),
    ],
)
def test_module_digest_changes_when_code_changes(temp_module, old, new):
    base = temp_module(MODULE)
    assert MODULE.count(old) == 1
    assert temp_module(MODULE.replace(old, new)) != base
    assert temp_module(MODULE) == base


def test_module_digest_of_an_unknown_module_is_an_error():
    with pytest.raises(ValueError, match="no_such_module_xyz"):
        fingerprint.module_digest("no_such_module_xyz")


def test_code_digest_ignores_order_and_repeats():
    a = fingerprint.code_digest(["reviewlstm.vocab", "reviewlstm.text"])
    assert fingerprint.code_digest(["reviewlstm.text", "reviewlstm.vocab", "reviewlstm.text"]) == a
    assert fingerprint.code_digest(["reviewlstm.text"]) != a


# --- fingerprint: stage keys -------------------------------------------------------------------


def record(digest: str, path: str = "/data/03_clean/abc", key: str = "abc", **figures) -> dict:
    return {"stage": "clean", "key": key, "path": path, "digest": digest, "figures": figures}


def test_stage_key_ignores_where_an_input_lives_only_its_digest_counts(temp_module):
    temp_module(MODULE)
    mods = [temp_module.name]
    a = fingerprint.stage_key("tokenize", mods, {"cleaned": record("d1"), "cfg": CleanConfig()})
    moved = record("d1", path="/elsewhere/03_clean/zzz", key="zzz", rows=12)
    assert fingerprint.stage_key("tokenize", mods, {"cleaned": moved, "cfg": CleanConfig()}) == a
    assert len(a) == 24 and all(c in "0123456789abcdef" for c in a)


def test_stage_key_changes_with_each_input_parameter_and_the_code(temp_module):
    temp_module(MODULE)
    mods = [temp_module.name]
    inputs = {"tokens": record("d1"), "other": record("d2"), "cfg": PruneConfig(min_count=2)}
    base = fingerprint.stage_key("prune", mods, inputs)
    keys = {
        "stage": fingerprint.stage_key("encode", mods, inputs),
        "first input": fingerprint.stage_key("prune", mods, {**inputs, "tokens": record("d9")}),
        "second input": fingerprint.stage_key("prune", mods, {**inputs, "other": record("d9")}),
        "parameter": fingerprint.stage_key("prune", mods, {**inputs, "cfg": PruneConfig(min_count=3)}),
        "input name": fingerprint.stage_key("prune", mods, {"tokens2": inputs["tokens"], "other": inputs["other"], "cfg": inputs["cfg"]}),
        "more code": fingerprint.stage_key("prune", [*mods, "reviewlstm.vocab"], inputs),
    }
    assert all(k != base for k in keys.values()), keys
    assert len(set(keys.values())) == len(keys)
    assert fingerprint.stage_key("prune", mods, dict(inputs)) == base  # deterministic

    temp_module(MODULE.replace("x * 2", "x * 4"))
    assert fingerprint.stage_key("prune", mods, inputs) != base
    temp_module(MODULE.replace("# a comment", "# edited comment"))
    assert fingerprint.stage_key("prune", mods, inputs) == base


def test_stage_key_plain_parameters_and_paths(temp_module):
    temp_module(MODULE)
    mods = [temp_module.name]
    a = fingerprint.stage_key("glove", mods, {"path": Path("/x/glove.txt"), "seed": 0})
    assert fingerprint.stage_key("glove", mods, {"path": "/x/glove.txt", "seed": 0}) == a
    assert fingerprint.stage_key("glove", mods, {"path": "/x/glove.txt", "seed": 1}) != a
    assert fingerprint.stage_key("glove", mods, {"path": "/y/glove.txt", "seed": 0}) != a


# --- storage ---------------------------------------------------------------------------------------


def layer(data_dir: Path, stage: str = "clean") -> Path:
    return data_dir / storage.LAYERS[stage]


def publish(data_dir: Path, key: str = "k1", text: str = "hello", stage: str = "clean") -> dict:
    with storage.stage_output(data_dir, stage, key) as out:
        out.parquet("t.parquet", pl.DataFrame({"text": [text, "b"]}))
        out.npy("m.npy", np.arange(6).reshape(2, 3))
        out.json("meta.json", {"text": text})
        out.figures = {"rows": 2}
    return out.record


def test_stage_output_publishes_a_folder_with_its_record(tmp_path):
    rec = publish(tmp_path)
    folder = storage.stage_dir(tmp_path, "clean", "k1")
    assert rec["path"] == str(folder.resolve())
    assert rec["stage"] == "clean" and rec["key"] == "k1" and rec["figures"] == {"rows": 2}
    assert sorted(p.name for p in folder.iterdir()) == ["m.npy", "meta.json", "record.json", "t.parquet"]
    assert storage.read_record(folder) == rec
    assert json.loads((folder / storage.RECORD).read_text()) == {**rec, "path": f"{folder.parent.name}/k1"}
    assert rec["digest"] == fingerprint.dir_digest(folder, skip=[storage.RECORD])
    assert storage.verify(rec)
    assert pl.read_parquet(storage.file_of(rec, "t.parquet"))["text"].to_list() == ["hello", "b"]
    assert [p.name for p in layer(tmp_path).iterdir()] == ["k1"]  # no temporary folder left


def test_a_copied_or_moved_data_folder_reads_and_verifies_its_own_outputs(tmp_path):
    rec = publish(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "copy")
    copied = storage.read_record(storage.stage_dir(tmp_path / "copy", "clean", "k1"))
    assert copied["path"] == str(storage.stage_dir(tmp_path / "copy", "clean", "k1").resolve()) != rec["path"]
    assert storage.verify(copied)
    np.save(Path(copied["path"]) / "m.npy", np.zeros(3))  # damage in the copy is the copy's
    assert not storage.verify(copied) and storage.verify(storage.read_record(Path(rec["path"])))
    os.rename(tmp_path / "a", tmp_path / "moved")
    assert storage.verify(storage.read_record(storage.stage_dir(tmp_path / "moved", "clean", "k1")))


def test_an_exception_inside_the_block_leaves_no_folder_and_no_temp_folder(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with storage.stage_output(tmp_path, "clean", "k1") as out:
            out.parquet("t.parquet", pl.DataFrame({"x": [1]}))
            assert out.tmp.is_dir() and out.tmp.parent == layer(tmp_path).resolve()
            raise RuntimeError("boom")
    assert out.record is None
    assert list(layer(tmp_path).iterdir()) == []


def test_output_is_not_visible_under_its_name_until_the_block_ends(tmp_path):
    final = storage.stage_dir(tmp_path, "clean", "k1")
    with storage.stage_output(tmp_path, "clean", "k1") as out:
        out.json("a.json", {})
        assert not final.exists()
        assert out.tmp.name.startswith(".")  # hidden while being written
    assert final.is_dir()


@pytest.mark.parametrize("damage", ["delete", "truncate", "edit", "add"])
def test_verify_detects_a_damaged_output(tmp_path, damage):
    rec = publish(tmp_path)
    target = storage.file_of(rec, "t.parquet")
    if damage == "delete":
        target.unlink()
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:-5])
    elif damage == "edit":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    else:
        storage.file_of(rec, "stray.txt").write_text("x")
    assert not storage.verify(rec)


def test_verify_of_a_removed_folder_is_false(tmp_path):
    rec = publish(tmp_path)
    shutil.rmtree(rec["path"])
    assert not storage.verify(rec)


def test_a_valid_existing_folder_is_kept(tmp_path):
    """A concurrent run published the same key first: its folder stays, this one is dropped."""
    first = publish(tmp_path, text="first")
    before = {p.name: p.stat().st_ino for p in Path(first["path"]).iterdir()}
    second = publish(tmp_path, text="second")
    assert second == first
    assert {p.name: p.stat().st_ino for p in Path(first["path"]).iterdir()} == before
    assert pl.read_parquet(storage.file_of(second, "t.parquet"))["text"][0] == "first"
    assert [p.name for p in layer(tmp_path).iterdir()] == ["k1"]


@pytest.mark.parametrize("damage", ["edit", "record"])
def test_a_damaged_existing_folder_is_replaced(tmp_path, damage):
    first = publish(tmp_path, text="first")
    if damage == "edit":
        storage.file_of(first, "meta.json").write_text("{}")
    else:
        storage.file_of(first, storage.RECORD).unlink()
    second = publish(tmp_path, text="second")
    assert second["digest"] != first["digest"]
    assert storage.verify(second)
    assert storage.read_record(Path(second["path"])) == second
    assert pl.read_parquet(storage.file_of(second, "t.parquet"))["text"][0] == "second"
    assert [p.name for p in layer(tmp_path).iterdir()] == ["k1"]  # no stale or temp folder left


def test_outputs_of_other_keys_live_side_by_side(tmp_path):
    a, b = publish(tmp_path, key="ka", text="a"), publish(tmp_path, key="kb", text="b")
    assert a["path"] != b["path"] and storage.verify(a) and storage.verify(b)
    assert sorted(p.name for p in layer(tmp_path).iterdir()) == ["ka", "kb"]


# --- paths.find_raw --------------------------------------------------------------------------------


@pytest.fixture
def no_defaults(tmp_path, monkeypatch):
    """No $REVIEWLSTM_RAW and no shared copy, whatever this machine has."""
    monkeypatch.delenv(paths.ENV_RAW, raising=False)
    monkeypatch.setattr(paths, "SHARED_COPY", tmp_path / "missing-shared" / "womens_clothing_reviews.csv")
    return tmp_path


def test_raw_option_comes_first(no_defaults, monkeypatch):
    data_dir = no_defaults / "data"
    (data_dir / "raw").mkdir(parents=True)
    (data_dir / "raw" / "in-data-dir.csv").write_text("x")
    monkeypatch.setenv(paths.ENV_RAW, str(no_defaults / "from-env.csv"))
    assert paths.find_raw(str(no_defaults / "given.csv"), data_dir) == no_defaults / "given.csv"
    assert paths.find_raw(None, data_dir) == no_defaults / "from-env.csv"
    assert paths.find_raw("", data_dir) == no_defaults / "from-env.csv"
    monkeypatch.setenv(paths.ENV_RAW, "")
    assert paths.find_raw(None, data_dir) == data_dir / "raw" / "in-data-dir.csv"


def test_the_one_table_in_the_raw_folder_comes_before_the_shared_copy(no_defaults, monkeypatch):
    shared = no_defaults / "shared.csv"
    shared.write_text("x")
    monkeypatch.setattr(paths, "SHARED_COPY", shared)
    data_dir = no_defaults / "data"
    assert paths.find_raw(None, data_dir) == shared  # no raw folder at all
    (data_dir / "raw").mkdir(parents=True)
    (data_dir / "raw" / "README.md").write_text("not a table")
    assert paths.find_raw(None, data_dir) == shared
    (data_dir / "raw" / "Reviews.PARQUET").write_bytes(b"PAR1")
    assert paths.find_raw(None, data_dir) == data_dir / "raw" / "Reviews.PARQUET"
    (data_dir / "01_raw").mkdir()  # the layer's name now; raw/ is read only where there is no 01_raw/
    (data_dir / "01_raw" / "reviews.csv").write_text("x")
    assert paths.find_raw(None, data_dir) == data_dir / "01_raw" / "reviews.csv"


def test_two_tables_in_the_raw_folder_is_an_error(no_defaults):
    raw = no_defaults / "data" / "raw"
    raw.mkdir(parents=True)
    (raw / "a.csv").write_text("x")
    (raw / "b.tsv").write_text("x")
    with pytest.raises(InputError) as info:
        paths.find_raw(None, no_defaults / "data")
    message = str(info.value)
    assert "\n" not in message
    assert str(raw) in message and "a.csv" in message and "b.tsv" in message and "--raw" in message
    # --raw still settles it.
    assert paths.find_raw(str(raw / "a.csv"), no_defaults / "data") == raw / "a.csv"


def test_no_reviews_file_anywhere_says_where_to_put_it(no_defaults):
    data_dir = no_defaults / "data"
    with pytest.raises(InputError) as info:
        paths.find_raw(None, data_dir)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("no reviews file")
    assert str(data_dir / "01_raw") in message
    assert "--raw" in message and paths.ENV_RAW in message and "kaggle.com" in message


def test_raw_record_digests_the_bytes(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(b"Title,Review Text,Rating\na,b,5\n")
    rec = paths.raw_record(path)
    assert rec["digest"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert rec["path"] == str(path.resolve()) and rec["stage"] == "raw"
    for bad, why in ((tmp_path / "nope.csv", "no such file"), (tmp_path, "is a directory")):
        with pytest.raises(InputError, match=why) as info:
            paths.raw_record(bad)
        assert str(bad) in str(info.value) and "\n" not in str(info.value)


def test_a_concurrent_writer_publishing_between_check_and_rename_wins(tmp_path, monkeypatch):
    """The other run's folder appears after this one looked: its valid output is kept."""
    real_rename = os.rename
    other = {}

    def rename(src, dst):
        if not other and Path(dst).name == "k1":
            monkeypatch.setattr(storage.os, "rename", real_rename)
            other["record"] = publish(tmp_path, text="other")  # the concurrent run, first to finish
        return real_rename(src, dst)

    monkeypatch.setattr(storage.os, "rename", rename)
    mine = publish(tmp_path, text="mine")
    assert mine == other["record"] and storage.verify(mine)
    assert pl.read_parquet(storage.file_of(mine, "t.parquet"))["text"][0] == "other"
    assert [p.name for p in layer(tmp_path).iterdir()] == ["k1"]


def test_an_atomic_write_gives_the_mode_a_plain_write_would(tmp_path):
    old = os.umask(0o022)
    try:
        with storage.atomic_file(tmp_path / "new.csv") as f:
            f.write(b"a")
        assert (tmp_path / "new.csv").stat().st_mode & 0o777 == 0o644
        (tmp_path / "new.csv").chmod(0o640)  # an existing file keeps its mode
        with storage.atomic_file(tmp_path / "new.csv") as f:
            f.write(b"b")
        assert (tmp_path / "new.csv").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
