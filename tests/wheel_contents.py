"""What the built distributions must hold (used by tests/test_packaging.py and .ci/install-check).

python tests/wheel_contents.py WHEEL [SDIST]    # prints the problems, exits 1 if any
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

# The files a user of the wheel runs, each at least once; everything else must be one of these
# kinds under posescope/ (no tests, no benchmarks, no docs, no screenshot).
WHEEL_MUST_HAVE = (
    "posescope/__init__.py",
    "posescope/__main__.py",
    "posescope/main.py",
    "posescope/core/cli.py",
    "posescope/core/detection/registry.py",
    "posescope/gui/app.py",
    "posescope/resources/__init__.py",
    "posescope/resources/style.qss",
    "posescope/resources/icon.svg",
)
WHEEL_SUFFIXES = (".py", ".qss", ".svg")
SDIST_MUST_HAVE = (
    "LICENSE",
    "README.md",
    "CHANGELOG.md",
    "pyproject.toml",
    "docs/checkpoints.md",
    "tests/conftest.py",
    "tests/factory.py",
    "tests/media/pose2sim_cam01.mp4",
    "tests/media/sports2d_demo.mp4",
    "tests/media/LICENSE_Pose2Sim_BSD-3-Clause.txt",
    "tests/media/LICENSE_Sports2D_BSD-3-Clause.txt",
)


def wheel_problems(wheel: str | Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    problems = [f"wheel lacks {n}" for n in WHEEL_MUST_HAVE if n not in names]
    dist_info = [n for n in names if n.split("/")[0].endswith(".dist-info")]
    if not any(n.endswith("/LICENSE") for n in dist_info):
        problems.append("wheel lacks the LICENSE in its dist-info")
    for n in names:
        if n in dist_info:
            continue
        if not n.startswith("posescope/"):
            problems.append(f"wheel installs a top-level name other than posescope: {n}")
        elif not n.endswith(WHEEL_SUFFIXES):
            problems.append(f"wheel holds a file users do not need: {n}")
        elif n.startswith(("posescope/tests/", "posescope/benchmarks/", "posescope/docs/")):
            problems.append(f"wheel holds a development file: {n}")
    return problems


def sdist_problems(sdist: str | Path) -> list[str]:
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    return [f"sdist lacks {n}" for n in SDIST_MUST_HAVE if n not in names]


def main(argv: list[str]) -> int:
    problems = wheel_problems(argv[0]) + (sdist_problems(argv[1]) if len(argv) > 1 else [])
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
