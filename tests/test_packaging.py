"""PoseScope as a package: one namespace, headless OpenCV, the command-line conventions, what the
built distributions hold, and the user's settings left alone."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

import posescope
from posescope import main
from posescope.core import cli
from tests import factory, wheel_contents
from tests.media_files import POSE2SIM
from tests.test_pipeline import BOX

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pkg")
    return factory.save_torch_zip(factory.state_dict_for("XS"), d / "xs.pth")


# --------------------------------------------------------------------------------------------
# One namespace


def test_the_checkout_is_the_posescope_package() -> None:
    assert Path(posescope.__file__).resolve().parent == ROOT
    assert Path(cli.__file__).resolve() == ROOT / "core" / "cli.py"
    assert posescope.__version__ and posescope.__version__ != "0+unknown"


def _ruff(source: str, filename: str) -> subprocess.CompletedProcess[str]:
    ruff = shutil.which("ruff", path=str(Path(PY).parent)) or shutil.which("ruff")
    assert ruff, "ruff is a test dependency"
    return subprocess.run(
        [ruff, "check", "--no-cache", "--select", "TID", "--stdin-filename", filename, "-"],
        input=source, capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip


def test_ruff_rejects_bare_core_gui_and_resources_imports() -> None:
    bad = _ruff(
        "from core.checkpoint import open_checkpoint\nimport gui.app\nfrom resources import path\n"
        "from .identify import identify\n",
        "core/example.py",
    )
    assert bad.returncode == 1
    assert bad.stdout.count("TID251") == 3, bad.stdout
    assert "TID252" in bad.stdout  # relative imports are refused too
    good = _ruff("from posescope.core.checkpoint import open_checkpoint\n", "core/example.py")
    assert good.returncode == 0, good.stdout


def _contract_text() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    start = text.index("[tool.importlinter]")
    end = text.find("\n[tool.", start + 1)
    while end != -1 and text.startswith("\n[tool.importlinter", end):
        end = text.find("\n[tool.", end + 1)
    return text[start : end if end != -1 else None]


@pytest.mark.parametrize("violation", [None, "import PySide6", "from posescope.gui import app"])
def test_import_contract_breaks_when_core_imports_qt_or_gui(tmp_path, violation) -> None:
    """The contract in pyproject.toml, run on a copy of core/: kept as it is, broken by one
    forbidden import."""
    pkg = tmp_path / "src" / "posescope"
    shutil.copytree(ROOT / "core", pkg / "core", ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "__init__.py").write_text("")
    (pkg / "gui").mkdir()
    (pkg / "gui" / "__init__.py").write_text("")
    (pkg / "gui" / "app.py").write_text("")
    if violation:
        (pkg / "core" / "sneaky.py").write_text(violation + "\n")
    (tmp_path / "pyproject.toml").write_text(_contract_text())
    linter = shutil.which("lint-imports", path=str(Path(PY).parent)) or "lint-imports"
    done = subprocess.run(
        [linter, "--config", str(tmp_path / "pyproject.toml"), "--no-cache"],
        cwd=tmp_path, env=_env(PYTHONPATH=str(tmp_path / "src")),
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    out = done.stdout + done.stderr
    if violation is None:
        assert done.returncode == 0 and "KEPT" in out, out
    else:
        assert done.returncode != 0 and "BROKEN" in out, out
        assert "posescope.core.sneaky" in out


def test_a_users_own_core_folder_does_not_shadow_ours(tmp_path, tiny) -> None:
    for name in ("core", "gui", "resources"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("raise ImportError('not PoseScope')\n")
    done = subprocess.run(
        [PY, "-m", "posescope", "inspect", str(tiny)],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ConvNeXtPose-XS" in done.stdout


# --------------------------------------------------------------------------------------------
# Headless OpenCV


def test_importing_cv2_loads_no_qt(tmp_path) -> None:
    code = (
        "import cv2, pathlib, sys\n"
        "maps = pathlib.Path('/proc/self/maps')\n"
        "libs = maps.read_text() if maps.exists() else ''\n"
        "print('QT' if 'libQt' in libs or '/cv2/qt' in libs else 'clean')\n"
        "print(pathlib.Path(cv2.__file__).parent)\n"
    )
    done = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True)
    verdict, folder = done.stdout.split()
    assert verdict == "clean"
    assert not (Path(folder) / "qt").exists(), "a GUI build of OpenCV (opencv-python) is installed"


# --------------------------------------------------------------------------------------------
# Command-line conventions


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_the_package_version(flag, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main.main([flag])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"posescope {posescope.__version__}"


def test_python_dash_m_and_main_py_run_the_same_cli(tmp_path) -> None:
    by_module = subprocess.run(
        [PY, "-m", "posescope", "--help"], cwd=tmp_path, env=_env(),
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    by_script = subprocess.run(
        [PY, str(ROOT / "main.py"), "--version"], cwd=tmp_path, env=_env(),
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    assert "inspect" in by_module.stdout and "bench" in by_module.stdout
    assert by_script.stdout.strip() == f"posescope {posescope.__version__}"


def test_every_option_of_every_command_has_a_one_line_help(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    parser = main.parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert set(sub.choices) == set(main.COMMANDS)
    for name, command in [("posescope", parser), *sub.choices.items()]:
        for action in command._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                continue
            assert action.help, f"{name}: {action.option_strings or action.dest} has no help"
        # rendered at 80 columns, no option's help wraps onto a second line
        lines = command.format_help().split("options:", 1)[1].splitlines()
        wrapped = [line for line in lines if line.startswith(" " * 20) and line.strip()]
        assert not wrapped, f"{name} --help wraps: {wrapped}"


@pytest.mark.parametrize(
    ("flags", "level"),
    [([], logging.INFO), (["-v"], logging.DEBUG), (["-q"], logging.WARNING),
     (["-qq"], logging.ERROR)],
)  # fmt: skip
def test_verbosity_flags_set_the_logging_level(flags, level, tiny, capsys) -> None:
    assert main.main([*flags, "inspect", str(tiny)]) == 0
    assert logging.getLogger("posescope").getEffectiveLevel() == level
    assert main.main(["inspect", *flags, str(tiny)]) == 0  # after the command too
    assert logging.getLogger("posescope").getEffectiveLevel() == level


def test_quiet_run_prints_results_but_no_diagnostics(tiny, tmp_path, capsys) -> None:
    box = ",".join(str(v) for v in BOX)
    assert main.main(["run", str(tiny), str(POSE2SIM), "--bbox", box, "--frames", "0:2"]) == 0
    loud = capsys.readouterr()
    assert "2 frames, 2 poses" in loud.err
    assert json.loads(loud.out)["frames"]
    assert main.main(["-q", "run", str(tiny), str(POSE2SIM), "--bbox", box, "--frames", "0:2"]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == ""
    assert json.loads(quiet.out)["frames"]


def test_output_into_a_closed_pipe_ends_quietly(tiny) -> None:
    """`posescope inspect ... | head -1`: enough output to fill the pipe, the reader gone."""
    proc = subprocess.Popen(
        [PY, str(ROOT / "main.py"), "inspect", *[str(tiny)] * 80],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert b"ConvNeXtPose-XS" in first
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert code == cli.EXIT_BROKEN_PIPE


def test_ctrl_c_in_run_writes_what_was_computed_and_exits_130(tiny, tmp_path) -> None:
    out = tmp_path / "poses.json"
    box = ",".join(str(v) for v in BOX)
    proc = subprocess.Popen(
        [PY, str(ROOT / "main.py"), "run", str(tiny), str(POSE2SIM), "--bbox", box,
         "--out", str(out)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=_env(), text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + 120
    while "/100 frames" not in seen and time.monotonic() < deadline:  # the first progress line
        ch = proc.stderr.read(1)
        if not ch:
            break
        seen += ch
    proc.send_signal(signal.SIGINT)
    err = seen + proc.stderr.read()
    code = proc.wait(timeout=120)
    assert code == cli.EXIT_INTERRUPTED, err
    assert "interrupted after" in err and "Traceback" not in err
    frames = json.loads(out.read_text())["frames"]
    assert 0 < len(frames) < 100


# --------------------------------------------------------------------------------------------
# What the distributions hold


def test_wheel_and_sdist_hold_what_they_should(tmp_path) -> None:
    done = subprocess.run(
        [PY, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", str(tmp_path),
         str(ROOT)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wheel = next(tmp_path.glob("posescope-*.whl"))
    sdist = next(tmp_path.glob("posescope-*.tar.gz"))
    assert wheel_contents.wheel_problems(wheel) == []
    assert wheel_contents.sdist_problems(sdist) == []
    with zipfile.ZipFile(wheel) as z:
        metadata = z.read(next(n for n in z.namelist() if n.endswith("/METADATA"))).decode()
    assert "License-Expression: MIT" in metadata
    assert "opencv-python-headless" in metadata and "Requires-Dist: opencv-python<" not in metadata


def test_the_wheel_checker_catches_stray_top_level_names(tmp_path) -> None:
    bad = tmp_path / "posescope-0-py3-none-any.whl"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("posescope/__init__.py", "")
        z.writestr("core/cli.py", "")
        z.writestr("posescope/screenshot.png", b"")
        z.writestr("posescope-0.dist-info/METADATA", "")
    problems = wheel_contents.wheel_problems(bad)
    assert any("top-level name" in p and "core/cli.py" in p for p in problems)
    assert any("screenshot.png" in p for p in problems)
    assert any("LICENSE" in p for p in problems)


# --------------------------------------------------------------------------------------------
# The user's settings


def test_screenshot_mode_leaves_the_users_settings_alone(tmp_path, tiny) -> None:
    config = tmp_path / "config"
    config.mkdir()
    shot = tmp_path / "shot.png"
    box = ",".join(str(v) for v in BOX)
    done = subprocess.run(
        [PY, str(ROOT / "main.py"), "gui", str(tiny), str(POSE2SIM), "--frame", "1", "--box", box,
         "--screenshot", str(shot)],
        env=_env(XDG_CONFIG_HOME=str(config), HOME=str(tmp_path)),
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    written = [p for p in config.rglob("*") if p.is_file()]
    assert written == [], f"the screenshot run wrote the user's settings: {written}"


def test_the_tests_never_see_the_users_real_folders() -> None:
    """QSettings and the caches resolve into this test run's own folder (tests/conftest.py)."""
    from tests.conftest import USER_DIRS

    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        assert Path(os.environ[var]).is_relative_to(USER_DIRS)
    code = (
        "from PySide6.QtCore import QCoreApplication, QSettings\n"
        "app = QCoreApplication([])\n"
        "print(QSettings('PoseScope', 'PoseScope').fileName())\n"
    )
    done = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True)
    assert Path(done.stdout.strip()).is_relative_to(USER_DIRS)


def test_the_media_ship_with_their_licences(media_dir) -> None:
    for video, licence in [("pose2sim_cam01.mp4", "LICENSE_Pose2Sim_BSD-3-Clause.txt"),
                           ("sports2d_demo.mp4", "LICENSE_Sports2D_BSD-3-Clause.txt")]:  # fmt: skip
        assert (media_dir / video).stat().st_size > 100_000
        assert (
            "BSD" in (media_dir / licence).read_text()
            or "Redistribution" in (media_dir / licence).read_text()
        )


def test_no_code_reaches_outside_the_checkout() -> None:
    """A fresh clone has nothing beside it: no code, test or benchmark names a sibling folder
    or an absolute path of one machine."""
    skip = {".venv", ".git", "build", "dist", "__pycache__"}
    offenders = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        recorded = rel.parts[:1] == ("benchmarks",) and path.suffix == ".json"
        if skip & set(rel.parts) or not (path.suffix in (".py", ".sh", ".toml") or recorded):
            continue
        text = path.read_text(errors="replace")
        for needle in ('"shared"', "../shared", "/work/", "parents[2]"):
            if needle in text and path.name != "test_packaging.py":
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []


def test_every_subpackage_is_listed_for_the_wheel() -> None:
    """pyproject lists the packages explicitly (the root is the package): a new folder of
    modules not listed there would be missing from the installed app."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    listed = set(
        tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {"posescope"} | {
        "posescope." + ".".join(p.parent.relative_to(root).parts)
        for top in ("core", "gui", "resources")
        for p in (root / top).rglob("__init__.py")
    }
    assert found == listed
