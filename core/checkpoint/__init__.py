"""Open any checkpoint container safely and return its weights as a flat state dict.

Containers (see docs/checkpoints.md): `torch.save` zip archives whatever the extension,
old non-zip `torch.save` pickles, a tar or zip archive holding an unpacked zip checkpoint
folder (`data.pkl`, `data/0`, ..., `version`), that folder itself, and safetensors files.
The format is told by the bytes, never by the file name.

Safety: pickles are only ever loaded with `torch.load(weights_only=True)`. When that refuses,
`NeedsTrustError` names the globals the file wants (found by disassembling the pickle, never by
running it); only `open_checkpoint(..., trust=True)` unpickles fully.

Memory: zip checkpoints are memory-mapped, and only the weights are copied out, so a large
optimizer state stored beside them is never read into RAM.

One job per module: `sniff` (which container), `pickles` (torch.load, safe and trusted
unpickling), `archives` (tar/zip/folder), `safetensors_file`, `unwrap` (wrappers and prefixes
down to a flat state dict), `opener` (open_checkpoint), `errors` and `result`.
"""

from posescope.core.checkpoint.errors import CheckpointError, NeedsTrustError, NotACheckpointError
from posescope.core.checkpoint.opener import open_checkpoint
from posescope.core.checkpoint.result import FORMATS, LoadedCheckpoint
from posescope.core.checkpoint.sniff import sniff_format
from posescope.core.checkpoint.unwrap import PREFIXES, WRAPPER_KEYS, strip_prefix

__all__ = [
    "FORMATS",
    "PREFIXES",
    "WRAPPER_KEYS",
    "CheckpointError",
    "LoadedCheckpoint",
    "NeedsTrustError",
    "NotACheckpointError",
    "open_checkpoint",
    "sniff_format",
    "strip_prefix",
]
