"""Which torch device a command runs on."""

from __future__ import annotations

import torch

from evopot.errors import EvopotError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` or ``"auto"``: CUDA when present, else the CPU; a CUDA device that is
    not there is a clear error."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise EvopotError(f"--device {device!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EvopotError(f"device {device} requested but torch sees no CUDA GPU here; use --device cpu")
    return device
