"""What `train.device: auto` means on this machine, found without importing torch (the plan and a
run with nothing to do stay torch-free): the GPU where torch.cuda.is_available() would say so."""

from __future__ import annotations

import ctypes
import importlib.util
import re
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def cuda_seen() -> bool:
    """torch.cuda.is_available() without the import: a CUDA build of torch (its version.py names a
    CUDA version) and at least one device the driver reports (CUDA_VISIBLE_DEVICES applies)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return False
    try:
        version = (Path(spec.origin).parent / "version.py").read_text()
    except OSError:
        return False
    built = re.search(r"^cuda(?::[^=]*)?=\s*['\"]", version, re.M)
    if built is None:  # `cuda = None`: the CPU build
        return False
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    count = ctypes.c_int(0)
    return driver.cuInit(0) == 0 and driver.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0


def resolve(device: str) -> str:
    """'auto' as 'cuda' where torch would see a GPU, else 'cpu'; 'cpu' and 'cuda' as they are."""
    return ("cuda" if cuda_seen() else "cpu") if device == "auto" else device
