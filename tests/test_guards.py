"""The guards in-process: budgets, escaping, output checks, atomic writes, image headers."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from posescope.core.checkpoint import CheckpointError, open_checkpoint
from posescope.core.checkpoint.budgets import Budget, check_tensors, parse_size
from posescope.core.checkpoint.errors import (
    BadTensorError,
    TooLargeError,
    UnreadablePickleError,
    UnsafePathError,
)
from posescope.core.escape import escape, show_path
from posescope.core.imagesize import ImageTooLargeError, check_pixels, image_size
from posescope.core.outputs import (
    UsageError,
    atomic_file,
    atomic_path,
    check_output,
    check_render_size,
    parse_focal,
    parse_frames,
)
from tests import factory, hostile


def test_escape_shows_every_control_character() -> None:
    assert escape("a\nb\r\t\x1b[31m\x7f\x85\u2028\u202e") == (
        "a\\nb\\r\\t\\x1b[31m\\x7f\\x85\\u2028\\u202e"
    )
    assert escape("plain name: é ü 中") == "plain name: é ü 中"
    assert show_path(os.fsdecode(b"a\xff.pth")) == "a\\udcff.pth"


def test_parse_size() -> None:
    assert parse_size("512M") == 512 * 2**20 and parse_size("4G") == 4 * 2**30
    assert parse_size("1.5GB") == int(1.5 * 2**30) and parse_size("1000") == 1000
    for bad in ("lots", "-1G", "0", "nan", "inf"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_tensor_checks(tmp_path: Path) -> None:
    t = torch.zeros(10)
    t.untyped_storage().resize_(8)  # now views 40 bytes of an 8-byte storage
    with pytest.raises(BadTensorError) as info:
        check_tensors({"w": t}, Budget(), tmp_path, 100)
    assert info.value.tensor == "w" and "views 40 bytes" in str(info.value)
    with pytest.raises(BadTensorError, match="meta tensor"):
        check_tensors({"m": torch.empty(3, device="meta")}, Budget(), tmp_path, 100)
    with pytest.raises(TooLargeError) as big:
        check_tensors({"g": torch.ones(1).expand(10**9)}, Budget(), tmp_path, 100)
    assert big.value.what == "g" and big.value.needed == 4 * 10**9
    check_tensors({"ok": torch.zeros(1000)}, Budget(), tmp_path, 4000)


def test_max_size_is_a_cap(tmp_path: Path) -> None:
    sd = factory.state_dict_for("tiny")
    p = factory.save_torch_zip(sd, tmp_path / "t.pth")
    assert open_checkpoint(p, max_size=10 * 2**20).state_dict.keys() == sd.keys()
    with pytest.raises(TooLargeError, match=r"over the 1\.0 KB allowed"):
        open_checkpoint(p, max_size=1024)


def test_typed_errors_pickle_roundtrip() -> None:
    for err in (
        TooLargeError("r", "p", "w", 5, 4),
        BadTensorError("r", "p", "w"),
        UnsafePathError("r", "p", "link"),
        UnreadablePickleError("r", "p"),
    ):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and vars(back) == vars(err)
        assert isinstance(back, CheckpointError)


def test_link_inside_the_folder_is_fine(tmp_path: Path) -> None:
    folder = factory.save_folder(factory.state_dict_for("tiny"), tmp_path / "ck")
    (folder / "data" / "0").rename(folder / "zero")
    os.symlink(folder / "zero", folder / "data" / "0")
    assert open_checkpoint(folder).format == "folder"


def test_output_checks(tmp_path: Path) -> None:
    video = tmp_path / "in.mp4"
    video.write_bytes(b"x")
    assert check_output(tmp_path / "o.json", "--out", (".json",)) == tmp_path / "o.json"
    for path, says in [
        (tmp_path / "o.txt", "must end in .json"),
        (tmp_path / "none" / "o.json", "does not exist"),
        (tmp_path / "in.json", "overwrite an input"),
    ]:
        if path.name == "in.json":
            os.link(video, path)
        with pytest.raises(UsageError, match=says):
            check_output(path, "--out", (".json",), [video])
    ck = factory.save_folder(factory.state_dict_for("tiny"), tmp_path / "ck")
    with pytest.raises(UsageError, match="overwrite an input"):
        check_output(ck / "poses.json", "--out", (".json",), [ck])
    with pytest.raises(UsageError, match="too large"):
        check_render_size(20000, 20000)
    check_render_size(1920, 1080)


def test_argument_parsers_say_what_is_allowed() -> None:
    assert parse_focal("1200,1300") == (1200.0, 1300.0) and parse_focal("900") == (900.0, 900.0)
    assert parse_frames("5:") == (5, None) and parse_frames(":9") == (0, 9)
    for text in ("nan", "0", "-3", "inf", "1,2,3"):
        with pytest.raises(UsageError):
            parse_focal(text)
    for text in ("5:2", "x:3", "-1:4", "7"):
        with pytest.raises(UsageError):
            parse_frames(text)


def test_atomic_writes_keep_the_old_file_on_failure(tmp_path: Path) -> None:
    p = tmp_path / "out.json"
    p.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(p, "w") as f:
        f.write("half")
        raise RuntimeError("stopped")
    assert p.read_text() == "old" and [x.name for x in tmp_path.iterdir()] == ["out.json"]
    with atomic_path(p) as tmp:
        assert tmp.suffix == ".json" and tmp.parent == tmp_path
        tmp.write_text("new")
    assert p.read_text() == "new" and [x.name for x in tmp_path.iterdir()] == ["out.json"]


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp"])
def test_image_size_from_headers(ext: str) -> None:
    ok, data = cv2.imencode(ext, np.zeros((37, 53, 3), np.uint8))
    assert ok and image_size(data.tobytes()) == (53, 37)


def test_pixel_cap(tmp_path: Path) -> None:
    big = hostile.png_of(tmp_path, 32000, 32000).read_bytes()
    with pytest.raises(ImageTooLargeError) as info:
        check_pixels(big)
    assert (info.value.width, info.value.height) == (32000, 32000)
    check_pixels(hostile.png_of(tmp_path, 4000, 3000, "ok.png").read_bytes())


def test_an_internal_bug_is_one_line_and_a_crash_log(tmp_path, monkeypatch, capsys) -> None:
    from posescope.core import cli

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    parser = cli.build_parser()

    def broken(args) -> int:
        raise KeyError("a bug")

    parser.set_defaults(func=broken, command="x")
    assert cli.execute(parser, []) == cli.EXIT_INTERNAL
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: internal error (KeyError)"), err
    log = Path(err[0].rsplit(" ", 1)[1])
    assert log.parent == tmp_path and "Traceback" in log.read_text()
    assert "raise KeyError" in log.read_text()
