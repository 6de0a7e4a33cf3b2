"""Where a model runs and in which precision, and whether a model name is a local folder.

One helper for the assessor engine (transformers) and the generator (diffusers), so that
`--device`, `--dtype` and a model path mean the same thing to both. torch is imported only when
a device or dtype is actually resolved.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

from preferthinker.errors import InputError

DEVICES = ("cpu", "cuda", "mps")
DTYPES = ("float32", "float16", "bfloat16")
# Every spelling accepted for a dtype; "auto" (like None) means "choose from the device".
_DTYPE_NAMES = {
    "auto": None,
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
    "half": "float16",
    "fp32": "float32",
    "float32": "float32",
    "float": "float32",
}
_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def check_device(device: Optional[str]) -> Optional[str]:
    """`device` if it names one ("cpu", "cuda", "cuda:N", "mps"); None for None, "" and "auto".

    Raises:
        InputError: any other name.

    Example:
        >>> check_device("cuda:1"), check_device("auto")
        ('cuda:1', None)
    """
    if device in (None, "", "auto"):
        return None
    if not _DEVICE.match(str(device)):
        raise InputError(
            f"device must be one of auto, {', '.join(DEVICES)} (or cuda:N), got {device!r}"
        )
    return str(device)


def dtype_name(dtype: Any) -> Optional[str]:
    """The canonical name ("float32", "float16", "bfloat16") of a dtype spelling or torch dtype;
    None for None, "" and "auto".

    Raises:
        InputError: an unknown spelling.

    Example:
        >>> dtype_name("bf16"), dtype_name("torch.float16"), dtype_name("auto")
        ('bfloat16', 'float16', None)
    """
    if dtype is None or dtype == "":
        return None
    key = str(dtype).lower().removeprefix("torch.")
    if key not in _DTYPE_NAMES:
        raise InputError(f"unknown dtype {dtype!r}; use auto, bf16, fp16 or fp32")
    return _DTYPE_NAMES[key]


def resolve_device(device: Optional[str] = None) -> str:
    """The device to run on: the one asked for, else cuda, else mps, else cpu.

    Raises:
        InputError: an unknown device name, or cuda asked for where CUDA is not available.

    Example:
        >>> resolve_device("cpu")
        'cpu'
    """
    import torch

    asked = check_device(device)
    if asked is not None:
        if asked.startswith("cuda") and not torch.cuda.is_available():
            raise InputError(
                f"device {asked!r} asked for but CUDA is not available; use {{device}} cpu",
                settings=("device",),
            )
        return asked
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(dtype: Any, device: str, gpu_default: str = "bfloat16"):
    """A torch dtype from a name ("bf16", "float16", "auto", None) or a torch dtype.

    None/"auto": float32 on CPU (half precision there is slow and numerically poor); on CUDA
    `gpu_default`, with float16 instead of bfloat16 on GPUs without bf16 support; float16 on MPS.

    Example:
        >>> str(resolve_dtype("bf16", "cpu")), str(resolve_dtype(None, "cpu"))
        ('torch.bfloat16', 'torch.float32')
    """
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    name = dtype_name(dtype)
    if name is None:
        if device.startswith("cuda"):
            name = dtype_name(gpu_default)
            if name == "bfloat16" and not torch.cuda.is_bf16_supported():
                name = "float16"
        elif device.startswith("mps"):
            name = "float16"
        else:
            name = "float32"
    return getattr(torch, name)


def looks_like_local_path(model: str) -> bool:
    """Whether a model name means a local folder rather than a hub id (`name` or `owner/name`):
    it exists, or starts with `.`, `/`, `~` or `\\`, has a drive letter, or more than one `/`.
    A URL (`scheme://...`) is never a local path.

    Example:
        >>> looks_like_local_path("./assessor"), looks_like_local_path("Qwen/Qwen2.5-VL-7B")
        (True, False)
    """
    name = str(model)
    if "://" in name:
        return False
    return (
        name.startswith((".", "/", "~", "\\"))
        or name.count("/") > 1
        or (len(name) > 1 and name[1] == ":")
        or Path(name).expanduser().exists()
    )
