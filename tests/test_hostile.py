"""Hostile and careless input through the real CLI, each case in its own process.

Per case: refused (or handled) with the expected exit status, exactly one `error:` line (or
none), no traceback, no escape sequence or forged line from the file, no marker file, nothing
left in the temp folder or written outside the case's folder, and peak RSS, temp-disk use and
time under generous bounds. The bounds are measured on the child process (wait4's ru_maxrss,
polling the size of its private TMPDIR); the figures are printed (`pytest -s`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import factory, hostile
from tests.media_files import POSE2SIM

ROOT = Path(__file__).resolve().parents[1]
RSS_BOUND_MB = 1500  # importing torch and cv2 alone is ~300 MB; the bombs used 2.6-12 GB
TEMP_BOUND_MB = 64  # the bombs wrote 2-12 GB of temp files
TIME_BOUND_S = 60.0  # the bombs took 28-79 s, the FIFO forever


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    rss_mb: float
    temp_mb: float
    seconds: float


def _dir_bytes(d: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(d):
        for f in files:
            try:
                st = os.lstat(os.path.join(root, f))
            except OSError:
                continue
            total += min(st.st_size, getattr(st, "st_blocks", st.st_size // 512 + 1) * 512)
    return total


def _peak_rss_kb(pid: int) -> int:
    """The process's peak resident set (VmHWM), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_cli(case_dir: Path, *argv: str | os.PathLike[str], timeout: float = 120) -> Outcome:
    """`python -m posescope ARGV` with a private TMPDIR and HOME; measured."""
    tmp = case_dir / "tmp"
    tmp.mkdir(exist_ok=True)
    env = dict(os.environ, TMPDIR=str(tmp), HOME=str(case_dir), PYTHONPATH=str(ROOT.parent))
    out_path, err_path = case_dir / "stdout.txt", case_dir / "stderr.txt"
    args = [sys.executable, "-m", "posescope", *map(os.fsencode, argv)]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, cwd=case_dir, env=env, stdout=out, stderr=err)
        peak = [0]
        done = threading.Event()

        rss = [0]

        def watch() -> None:
            while not done.wait(0.02):
                peak[0] = max(peak[0], _dir_bytes(tmp))
                rss[0] = max(rss[0], _peak_rss_kb(proc.pid))
                if time.perf_counter() - t0 > timeout:
                    proc.kill()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        # wait4's ru_maxrss would count the forked copy of this (large) pytest process before
        # exec: the child's own peak is VmHWM, polled until it exits (waitid leaves it
        # waitable, so /proc still has it when it has just ended).
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        rss[0] = max(rss[0], _peak_rss_kb(proc.pid))
        _, status, _usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        done.set()
        watcher.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    return Outcome(
        proc.returncode,
        out_path.read_bytes().decode("utf-8", "replace"),
        err_path.read_bytes().decode("utf-8", "replace"),
        rss[0] / 1024,
        peak[0] / 2**20,
        seconds,
    )


@pytest.fixture(scope="module")
def xs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("xs")
    return factory.save_torch_zip({"network": factory.state_dict_for("XS")}, d / "xs.pth")


def _inspect(make: Callable[[Path], Path], *extra: str) -> Callable[[Path, Path], list]:
    return lambda d, xs: ["inspect", make(d), *extra]


def _fifo(d: Path) -> Path:
    os.mkfifo(d / "pipe.pth")
    return d / "pipe.pth"


def _payload(d: Path) -> Path:
    return factory.write_malicious_pickle(d / "evil.pth", d / "MARKER")


def _weird_name(d: Path, xs: Path) -> list:
    name = os.fsdecode(b"xs-\xff\xfe.pth")
    shutil.copy(xs, d / name)
    return ["inspect", d / name]


def _copy_video(d: Path) -> Path:
    return Path(shutil.copy(POSE2SIM, d / "in.mp4"))


# name -> (argv builder, expected exit status, what the error line must say or None for none)
CASES: dict[str, tuple[Callable[[Path, Path], list], int, str | None]] = {
    "zip-bomb-data.pkl": (_inspect(hostile.zip_bomb_pickle), 1, "a checkpoint's pickle"),
    "zip-bomb-data.pkl-json": (_inspect(hostile.zip_bomb_pickle, "--json"), 1, "declares 2.0"),
    "zip-bomb-folder": (_inspect(hostile.zip_bomb_folder), 1, "over the 64.0 MB allowed"),
    "tar.gz-bomb": (_inspect(hostile.tar_gz_bomb), 1, "over the 64.0 MB allowed"),
    "tar-12-GB-member": (_inspect(hostile.tar_declaring_12_gb), 1, "12.0 GB"),
    "sparse-file-in-folder": (_inspect(hostile.sparse_folder), 1, "12.0 GB"),
    "symlink-to-etc-passwd": (_inspect(hostile.symlink_folder), 1, "outside the checkpoint"),
    "meta-tensors": (_inspect(hostile.meta_wide), 1, "is a meta tensor"),
    "meta-tensors-run": (
        lambda d, xs: ["run", hostile.meta_wide(d), POSE2SIM, "--bbox", "1,1,50,50"],
        1,
        "is a meta tensor",
    ),
    "stride-0-legacy-10**12": (_inspect(hostile.stride0_legacy), 1, "tensor 'w' (1000000000000,)"),
    "stride-0-zip-1.5e9": (_inspect(hostile.stride0_zip), 1, "tensor 'w' (1500000000,)"),
    "1500-views-of-a-storage": (_inspect(hostile.views_of_one_storage), 1, "each view"),
    "bytearray-8-GiB": (_inspect(hostile.bytearray_bomb), 1, "bytearray of 8.0 GB"),
    "30000-zip-entries": (_inspect(hostile.many_entries), 1, "30000 entries"),
    "zip-declaring-10**6-entries": (
        _inspect(hostile.zip_declaring_a_million),
        1,
        "1000000 entries",
    ),
    "safetensors-1500-views": (_inspect(hostile.safetensors_views), 1, "invalid offset"),
    **{
        f"safetensors-{k}": (
            _inspect(lambda d, k=k, h=h: hostile.safetensors_raw(d, k, h)),
            1,
            "safetensors",
        )
        for k, h in hostile.SAFETENSORS_HEADERS.items()
    },
    "terminal-injection": (_inspect(hostile.injected_names), 1, "x\\n\\x1b[31merror: your"),
    "fifo": (_inspect(_fifo), 1, "it is a FIFO"),
    "fifo-run-input": (lambda d, xs: ["run", xs, _fifo(d)], 1, "not a regular file"),
    "dev-zero": (lambda d, xs: ["inspect", "/dev/zero"], 1, "it is a device"),
    "zero-bytes": (_inspect(lambda d: hostile.raw_bytes(d, b"")), 1, "the file is empty"),
    "random-bytes": (_inspect(lambda d: hostile.raw_bytes(d, os.urandom(4096))), 1, "random"),
    "pickle-protocol-4": (_inspect(hostile.protocol4), 1, "pickled with protocol 4"),
    "pickle-payload": (_inspect(_payload), 1, "--trust"),
    "non-utf8-file-name": (_weird_name, 0, None),
    "max-size-1M": (lambda d, xs: ["inspect", xs, "--max-size", "1M"], 1, "over the 1.0 MB"),
    "max-size-bad": (
        lambda d, xs: ["inspect", xs, "--max-size", "lots"],
        2,
        "error: --max-size: a size like",
    ),
    "png-32000x32000": (
        lambda d, xs: ["run", xs, hostile.png_of(d, 32000, 32000), "--bbox", "1,1,9,9"],
        1,
        "images over 100 MP are refused",
    ),
    "render-20000x20000": (
        lambda d, xs: ["run", xs, hostile.png_of(d, 20000, 20000), "--render", d / "o.mp4"],
        1,
        "refused before decoding",
    ),
    "camera-superscript-2": (lambda d, xs: ["run", xs, "camera:²"], 1, "expected camera:N"),
    "smoothing-negative": (
        lambda d, xs: ["run", xs, POSE2SIM, "--smooth", "--smooth-min-cutoff", "-1"],
        2,
        "--smooth-min-cutoff: a number above 0",
    ),
    "smoothing-beta-nan": (
        lambda d, xs: ["run", xs, POSE2SIM, "--smooth-beta", "nan"],
        2,
        "a finite number",
    ),
    "focal-nan": (lambda d, xs: ["run", xs, POSE2SIM, "--focal", "nan"], 2, "--focal: a finite"),
    "frames-backwards": (lambda d, xs: ["run", xs, POSE2SIM, "--frames", "5:2"], 2, "after"),
    "bbox-negative": (lambda d, xs: ["run", xs, POSE2SIM, "--bbox", "0,0,-5,5"], 2, "above 0"),
    "render-missing-folder": (
        lambda d, xs: ["run", xs, POSE2SIM, "--render", d / "nope" / "o.mp4"],
        2,
        "not exist",
    ),
    "render-no-extension": (
        lambda d, xs: ["run", xs, POSE2SIM, "--render", d / "video"],
        2,
        "no extension",
    ),
    "render-unknown-extension": (
        lambda d, xs: ["run", xs, POSE2SIM, "--render", d / "o.xyz"],
        2,
        "must end in .mp4",
    ),
    "render-onto-a-folder": (
        lambda d, xs: ["run", xs, POSE2SIM, "--render", _dir(d / "v.mp4")],
        2,
        "is a folder",
    ),
    "out-into-missing-folder": (
        lambda d, xs: ["run", xs, POSE2SIM, "--out", d / "no" / "p.json"],
        2,
        "not exist",
    ),
    "render-onto-the-input": (
        lambda d, xs: ["run", xs, (v := _copy_video(d)), "--render", v],
        2,
        "overwrite an input",
    ),
    "out-onto-the-checkpoint": (
        lambda d, xs: ["run", (c := Path(shutil.copy(xs, d / "c.json"))), POSE2SIM, "--out", c],
        2,
        "overwrite an input",
    ),
}


def _dir(p: Path) -> Path:
    p.mkdir()
    return p


FIGURES: list[str] = []


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_case(case: str, xs: Path, tmp_path: Path) -> None:
    build, want_code, says = CASES[case]
    argv = build(tmp_path, xs)
    inputs = {p: p.read_bytes() for p in map(Path, argv[1:]) if p.is_file() and p.stat().st_size
              < 200 * 2**20 and p.parent == tmp_path}  # fmt: skip
    before = {p for p in tmp_path.rglob("*")}
    got = run_cli(tmp_path, *argv)
    line = f"{case:28s} exit {got.code:3d}  {got.seconds:5.1f} s  {got.rss_mb:6.0f} MB RSS  " \
           f"{got.temp_mb:5.1f} MB temp"  # fmt: skip
    FIGURES.append(line)
    print(line)
    text = got.out + got.err
    assert got.code == want_code, text
    assert "Traceback" not in text and "\x1b" not in text, text
    errors = [ln for ln in got.err.splitlines() if ln.strip()]
    if says is None:
        assert not any(ln.startswith("error:") for ln in errors), text
    else:
        assert len(errors) == 1 and errors[0].startswith("error: "), text
        assert says in errors[0], text
        assert got.out in ("", "[]\n"), text  # --json: the list of what did open
    assert not (tmp_path / "MARKER").exists()
    assert not any((tmp_path / "tmp").iterdir()), "temp files left behind"
    new = {p for p in tmp_path.rglob("*")} - before
    new -= {tmp_path / "stdout.txt", tmp_path / "stderr.txt", tmp_path / "tmp"}
    assert not new, f"files written: {sorted(map(str, new))}"
    for p, data in inputs.items():
        assert p.read_bytes() == data, f"{p.name} was changed"
    assert got.rss_mb < RSS_BOUND_MB and got.temp_mb < TEMP_BOUND_MB
    assert got.seconds < TIME_BOUND_S


def test_focal_nan_leaves_an_existing_out_file_alone(xs: Path, tmp_path: Path) -> None:
    out = tmp_path / "poses.json"
    out.write_text('{"kept": true}')
    got = run_cli(tmp_path, "run", xs, POSE2SIM, "--focal", "nan", "--out", out)
    assert got.code == 2 and out.read_text() == '{"kept": true}'


def test_sigterm_keeps_what_was_computed(xs: Path, tmp_path: Path) -> None:
    """A run stopped by SIGTERM (a `timeout`) writes the frames it computed, atomically."""
    out = tmp_path / "poses.json"
    out.write_text("old")
    env = dict(os.environ, PYTHONPATH=str(ROOT.parent), TMPDIR=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "posescope", "run", str(xs), str(POSE2SIM), "--bbox",
         "700,250,400,700", "--out", str(out)],
        stderr=subprocess.PIPE, env=env, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = ""
    while "25/" not in seen:  # progress: every 25 frames when stderr is not a terminal
        ch = proc.stderr.read(1)
        assert ch, seen
        seen += ch
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read()
    assert proc.wait(60) == 143, seen + rest
    frames = json.loads(out.read_text())["frames"]
    assert len(frames) >= 25
    assert ("Traceback" not in rest and "terminated" in rest.lower()) or "interrupted" in rest
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part.json")]


def test_a_folder_whose_first_image_is_corrupt_runs(xs: Path, tmp_path: Path) -> None:
    """Corrupt images are skipped with a warning, the first one too (it used to abort)."""
    import cv2
    import numpy as np

    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "f0.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    for i in (1, 2):
        cv2.imwrite(str(folder / f"f{i}.png"), np.full((120, 160, 3), 90, np.uint8))
    hostile.png_of(folder, 32000, 32000, "f3.png")
    out = tmp_path / "poses.json"
    got = run_cli(tmp_path, "run", xs, folder, "--bbox", "10,10,100,100", "--out", out)
    assert got.code == 0, got.err
    assert [f["index"] for f in json.loads(out.read_text())["frames"]] == [1, 2]
    assert "skipping f0.png" in got.err and "f3.png: the image is 32000x32000" in got.err
