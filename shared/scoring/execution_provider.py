"""Which onnxruntime execution provider serves a model: CUDA when the runtime has it and a GPU is visible.

A heavy model's endpoint may run on a GPU instance (``endpoint_instance_type = "ml.g…"``). onnxruntime
uses the GPU only if its package was built with the CUDA provider (``onnxruntime-gpu``) *and* the
process sees a CUDA device; otherwise it serves on the CPU, and the endpoint says why. The choice is
pure here (what the runtime offers, what the machine shows), so tests decide it with fakes; the
endpoint (``training/inference.py``) probes the real machine and then checks which provider the
session actually took: onnxruntime falls back to the CPU by itself when the CUDA libraries fail to load.

The light path (the score function in Lambda) never asks: Lambda has no GPU and its layer ships the
CPU-only ``onnxruntime``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"

NO_CUDA_PROVIDER = "onnxruntime has no CUDA provider"
NO_GPU_VISIBLE = "no GPU visible"
CUDA_PROVIDER_FAILED = "the CUDA provider did not load (onnxruntime fell back to the CPU)"
SERVING_ON_GPU = "CUDA provider available and a GPU visible"

CUDA_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"
"""The CUDA runtime's own variable: empty or ``-1`` hides every device from the process."""
HIDDEN_DEVICE_VALUES = frozenset({"", "-1", "none", "NoDevFiles"})
NVIDIA_DEVICE_GLOB = "nvidia[0-9]*"
"""``/dev/nvidia0``, ``/dev/nvidia1`` …: the device files the NVIDIA driver creates for each GPU (and the
container runtime passes into a GPU container)."""


@dataclass(frozen=True, kw_only=True)
class GpuVisibility:
    """Whether this process can see a CUDA device, and what showed it (or why not)."""

    visible: bool
    detail: str


@dataclass(frozen=True, kw_only=True)
class ProviderChoice:
    """The providers to create the session with, most preferred first, and why."""

    providers: tuple[str, ...]
    reason: str

    @property
    def provider(self) -> str:
        return self.providers[0]

    @property
    def on_gpu(self) -> bool:
        return self.provider == CUDA_PROVIDER


def probe_gpu(*, device_dir: Path = Path("/dev"), environ: Mapping[str, str] | None = None) -> GpuVisibility:
    """A GPU is visible when the driver's device files exist and ``CUDA_VISIBLE_DEVICES`` does not hide them."""
    env = os.environ if environ is None else environ
    hidden = env.get(CUDA_VISIBLE_DEVICES)
    if hidden is not None and hidden.strip() in HIDDEN_DEVICE_VALUES:
        return GpuVisibility(visible=False, detail=f"{CUDA_VISIBLE_DEVICES}={hidden!r} hides every device")
    devices = sorted(path.name for path in device_dir.glob(NVIDIA_DEVICE_GLOB) if path.name[len("nvidia") :].isdigit())
    if not devices:
        return GpuVisibility(visible=False, detail=f"no {device_dir}/{NVIDIA_DEVICE_GLOB} device file")
    return GpuVisibility(visible=True, detail=", ".join(f"{device_dir}/{name}" for name in devices))


def choose_providers(available: Iterable[str], gpu: GpuVisibility) -> ProviderChoice:
    """CUDA then CPU when onnxruntime offers CUDA and a GPU is visible; else the CPU alone, with the reason."""
    offered = set(available)
    if CUDA_PROVIDER not in offered:
        return ProviderChoice(providers=(CPU_PROVIDER,), reason=NO_CUDA_PROVIDER)
    if not gpu.visible:
        return ProviderChoice(providers=(CPU_PROVIDER,), reason=f"{NO_GPU_VISIBLE} ({gpu.detail})")
    return ProviderChoice(providers=(CUDA_PROVIDER, CPU_PROVIDER), reason=f"{SERVING_ON_GPU} ({gpu.detail})")


def served_by(choice: ProviderChoice, session_providers: Iterable[str]) -> ProviderChoice:
    """What a session created with ``choice`` serves on: onnxruntime drops CUDA (with only a log line of its
    own) when the CUDA or cuDNN libraries do not load, so the session's first provider is the truth."""
    taken = tuple(session_providers)
    if choice.on_gpu and (not taken or taken[0] != CUDA_PROVIDER):
        return ProviderChoice(providers=taken or (CPU_PROVIDER,), reason=CUDA_PROVIDER_FAILED)
    return choice
