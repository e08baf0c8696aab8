"""Where and how a training runs: the device, mixed precision, the memory format, torch.compile and
the DataLoader workers that read the batches.

None of it is part of :class:`~rlselector.train.TrainConfig`: a recipe (and every cache key made
from it) is the same on a laptop and on a GPU. Mixed precision changes the numbers, so a checkpoint
records it and refuses a resume with another setting.

Mixed precision (``amp="bf16"|"fp16"``) is autocast: each operation picks its precision, the weights
stay float32 ("master weights"), so the optimiser updates and its state are float32, and batch norm's
statistics are accumulated in float32 (autocast keeps normalisation layers there). The loss is
computed outside autocast on float32 logits: a log-softmax in bf16 would round every per-sample loss
the hooks read. fp16 needs a :class:`torch.amp.GradScaler` (its gradients underflow otherwise); its
state travels in the checkpoint. bf16 has float32's range and needs none.
"""

from __future__ import annotations

import logging
import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import InputError

log = logging.getLogger(__name__)

DEVICES = "auto, cpu, cuda, cuda:N or mps"
AMP_DTYPES = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _local_rank() -> int:
    """This process's GPU under torchrun (LOCAL_RANK), 0 otherwise."""
    return int(os.environ.get("LOCAL_RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device for ``auto`` (CUDA where present, else the CPU; MPS only when asked for),
    ``cpu``, ``cuda`` (``cuda:LOCAL_RANK`` under torchrun), ``cuda:N`` or ``mps``; one that is not
    here is refused with what is."""
    text = str(device).strip().lower()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not torch.backends.mps.is_available():
            raise InputError("--device mps: this machine (or this torch build) has no Apple MPS device; use --device cpu or auto")
        return torch.device("mps")
    kind, _, number = text.partition(":")
    if kind != "cuda" or (number and not number.isdigit()):
        raise InputError(f"--device must be one of {DEVICES}, got {device!r}")
    if not torch.cuda.is_available():
        raise InputError(f"--device {device}: no CUDA GPU is visible here (torch {torch.__version__}, "
                         f"CUDA build: {torch.version.cuda or 'none'}); use --device cpu or auto")
    index = int(number) if number else _local_rank()
    if index >= torch.cuda.device_count():
        raise InputError(f"--device {device}: GPU {index} does not exist, this machine has {torch.cuda.device_count()} "
                         f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return torch.device("cuda", index)


def _cpu_has_half_kernels(amp: str) -> bool:
    """Whether oneDNN runs ``amp``'s precision natively on this CPU (AVX512-BF16, AMX or AVX512-FP16)."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported" if amp == "bf16" else "_is_mkldnn_fp16_supported", None)
    try:
        return bool(check()) if check is not None else True
    except RuntimeError:  # a build without oneDNN: say nothing rather than guess
        return True


@dataclass(frozen=True)
class Runtime:
    """Where one training runs and how (see the module's docstring); :meth:`of` checks and resolves it."""

    device: torch.device
    amp: str = "off"
    """``off`` (float32), ``bf16`` or ``fp16`` autocast."""
    channels_last: bool = False
    """NHWC memory format for the model and its inputs: faster convolutions on GPUs (tensor cores)."""
    compile: bool = False
    """torch.compile the forward pass; where it cannot compile, training goes on without it, with a warning."""
    workers: int = 0
    """DataLoader worker processes that read (and, for lazy sources, decode) the batches; 0 = this process."""

    @classmethod
    def of(cls, device: str | torch.device = "auto", amp: str = "off", channels_last: bool = False, compile: bool = False,
           workers: int = 0) -> "Runtime":
        if amp not in AMP_DTYPES:
            raise InputError(f"--amp must be off, bf16 or fp16, got {amp!r}")
        for name, value in (("--channels-last", channels_last), ("--compile", compile)):
            if not isinstance(value, bool):
                raise InputError(f"{name} is a switch (True or False), got {value!r}")
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
            raise InputError(f"--workers must be an integer of at least 0 (0 = read batches in this process), got {workers!r}")
        resolved = resolve_device(device)
        if amp == "bf16" and resolved.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise InputError(f"--amp bf16: {torch.cuda.get_device_name(resolved)} has no bfloat16 support; use --amp fp16")
        return cls(resolved, amp, channels_last, compile, workers)

    @property
    def pin_memory(self) -> bool:
        """Batches are read into page-locked memory, so their copy to the GPU runs without blocking."""
        return self.device.type == "cuda"

    def autocast(self) -> AbstractContextManager:
        dtype = AMP_DTYPES[self.amp]
        return nullcontext() if dtype is None else torch.autocast(self.device.type, dtype=dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaling for fp16; a disabled scaler (a plain backward and step) otherwise."""
        return torch.amp.GradScaler(self.device.type, enabled=self.amp == "fp16")

    def place(self, model: torch.nn.Module) -> torch.nn.Module:
        """Move ``model`` (in place) to the device, in channels-last format when asked. On a GPU cuDNN
        then picks the fastest convolution for each shape it meets (a global setting, left alone when
        the user asked for deterministic algorithms); on a CPU without half-precision instructions
        mixed precision is warned about."""
        if self.device.type == "cuda" and not torch.are_deterministic_algorithms_enabled():
            torch.backends.cudnn.benchmark = True
        if self.amp != "off" and self.device.type == "cpu" and not _cpu_has_half_kernels(self.amp):
            log.warning("--amp %s on a CPU without %s instructions: torch emulates them, expect it several times slower than "
                        "float32 (bf16 ran 10x slower on a 2-core EPYC without them: BENCHMARKS.md); mixed precision pays on GPUs",
                        self.amp, self.amp)
        return model.to(self.device, memory_format=torch.channels_last) if self.channels_last else model.to(self.device)

    def inputs(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.contiguous(memory_format=torch.channels_last) if self.channels_last and batch.ndim == 4 else batch

    def record(self) -> dict[str, Any]:
        """What result.json says about where the run ran."""
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else self.device.type
        return {"device": str(self.device), "device_name": name, "amp": self.amp, "channels_last": self.channels_last,
                "compile": self.compile, "workers": self.workers}


class CompiledForward:
    """``module`` through torch.compile; where compiling fails (no C++ compiler or Triton, an operation
    TorchDynamo cannot trace, an unsupported Python), one warning names the cause and the eager module
    runs from then on. Compilation happens at the first call (and again for a new batch shape), before
    anything executes, so the failed call is simply run again eagerly."""

    def __init__(self, module: torch.nn.Module) -> None:
        import torch._dynamo

        self.module = module
        self.compiled: Any = None
        if not torch._dynamo.is_dynamo_supported():
            log.warning("--compile: torch.compile is not supported with this Python/torch; training without it")
        else:
            self.compiled = torch.compile(module)

    def __call__(self, *args: Any) -> Any:
        if self.compiled is not None:
            try:
                return self.compiled(*args)
            except torch._dynamo.exc.TorchDynamoException as err:
                log.warning("--compile: torch.compile failed here (%s: %s); training goes on without it",
                            type(err).__name__, str(err).strip().splitlines()[0] if str(err).strip() else "")
                self.compiled = None
        return self.module(*args)
