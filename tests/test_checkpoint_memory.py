"""core.checkpoint: a big optimizer state beside small weights is never read into memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from posescope.core.checkpoint import open_checkpoint
from tests import factory
from tests.factory import assert_same

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_sd() -> dict[str, torch.Tensor]:
    return factory.state_dict_for("tiny", seed=7)


def _reachable_tensors(obj: Any, seen: set[int] | None = None) -> list[torch.Tensor]:
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        items = [*obj.keys(), *obj.values()]
    elif isinstance(obj, list | tuple | set):
        items = list(obj)
    elif hasattr(obj, "__dict__"):
        items = list(vars(obj).values())
    else:
        return []
    return [t for item in items for t in _reachable_tensors(item, seen)]


OPTIMIZER_BYTES = 300 * 1024 * 1024

_MEASURE = textwrap.dedent(
    """
    import json, os, resource, sys
    sys.path.insert(0, sys.argv[2])
    from posescope.core.checkpoint import open_checkpoint

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    rss0, peak0 = rss(), peak()
    ck = open_checkpoint(sys.argv[1])
    print(json.dumps({"rss": rss() - rss0, "peak": peak() - peak0, "n": len(ck.state_dict)}))
    """
)


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc (Linux)")
def test_big_optimizer_state_is_never_read(
    tiny_sd: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    path = tmp_path / "big.pth"
    obj = {
        "epoch": 3,
        "network": tiny_sd,
        "optimizer": factory.big_optimizer_state(OPTIMIZER_BYTES),
    }
    torch.save(obj, path)
    del obj
    assert path.stat().st_size > OPTIMIZER_BYTES
    weights_bytes = sum(v.numel() * v.element_size() for v in tiny_sd.values())

    # (a) nothing reachable from the result holds optimizer tensors (or the mmap of the file)
    ck = open_checkpoint(path)
    assert ck.format == "torch-zip" and ck.meta == {"epoch": 3, "other_keys": ["optimizer"]}
    tensors = _reachable_tensors(ck)
    assert len(tensors) == len(tiny_sd)
    assert sum(t.untyped_storage().nbytes() for t in tensors) == weights_bytes
    assert_same(ck.state_dict, tiny_sd)
    del ck

    # (b) opening it grows RSS (now and at peak) far less than the optimizer state
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    grown = json.loads(out.stdout.strip().splitlines()[-1])
    assert grown["n"] == len(tiny_sd)
    assert grown["rss"] < OPTIMIZER_BYTES / 10, grown
    assert grown["peak"] < OPTIMIZER_BYTES / 10, grown
