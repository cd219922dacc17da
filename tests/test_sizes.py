"""Sizes that show the design: no source file over 600 lines (one concept per module).

core/ and gui/ are the product; benchmarks/ and tests/ are held to the same limit.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 600
FOLDERS = ("core", "gui", "benchmarks", "tests")


def oversized(root: Path, folders: tuple[str, ...] = FOLDERS) -> dict[str, int]:
    """{path: lines} of the .py files under `folders` (and at the top of `root`) over LIMIT."""
    files = [*root.glob("*.py"), *(p for f in folders for p in (root / f).rglob("*.py"))]
    lines = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in files}
    return {p.relative_to(root).as_posix(): n for p, n in lines.items() if n > LIMIT}


def test_no_source_file_is_over_600_lines() -> None:
    assert (ROOT / "core" / "identify.py").is_file()  # the walk looks where the code is
    assert oversized(ROOT) == {}


def test_the_size_check_sees_a_file_one_line_too_long(tmp_path: Path) -> None:
    (tmp_path / "core" / "deep").mkdir(parents=True)
    (tmp_path / "core" / "deep" / "big.py").write_text("x = 1\n" * (LIMIT + 1))
    (tmp_path / "core" / "fits.py").write_text("x = 1\n" * LIMIT)
    (tmp_path / "main.py").write_text("x = 1\n" * (LIMIT + 5))
    assert oversized(tmp_path) == {"core/deep/big.py": LIMIT + 1, "main.py": LIMIT + 5}
