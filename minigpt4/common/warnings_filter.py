"""The one place where known-harmless third-party warnings are silenced, each narrowly and with the reason.

Entry points (training, evaluation, the demos, the quickstart) call `quiet_known_warnings()` once. Every entry
matches one message of one library and one category, so anything else (and a real problem from the same library)
still reaches the user. Warnings our own code caused are fixed where they arise, not listed here; the test
`tests/common/test_warnings_filter.py` runs a short chat and a training step with warnings recorded and fails on
any warning not listed below.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class KnownWarning:
    """A `warnings.filterwarnings("ignore", ...)` entry: message regex (from its start), category, module regex
    of the code that calls `warnings.warn`."""

    message: str
    category: type[Warning]
    module: str
    why: str


KNOWN_WARNINGS = (
    KnownWarning(
        message=r"`is_gradient_checkpointing` is deprecated",
        category=FutureWarning,
        module=r"transformers\.modeling_utils",
        # raised by transformers' deprecated property, read by peft (PeftModel.__init__, through get_peft_model)
        # on every LoRA model; nothing in the user's hands or ours changes it until peft reads the new name
        why="peft reads transformers' deprecated is_gradient_checkpointing when it wraps a LoRA model",
    ),
    KnownWarning(
        message=r"enable_nested_tensor is True, but self.use_nested_tensor is False because encoder_layer.norm_first",
        category=UserWarning,
        module=r"torch\.nn\.modules\.transformer",
        # MiniGPT-5's output mapper is the official nn.Transformer(norm_first=True), which builds its encoder with
        # the nested-tensor fast path on and then finds it unusable; that path only serves padded inference
        # batches, which the mapper never gets, and building it differently would change the official module
        why="nn.Transformer(norm_first=True) (MiniGPT-5's official output mapper) notes its unused nested-tensor path",
    ),
)


@dataclass(frozen=True)
class KnownLogRecord:
    """A log record of a third-party logger dropped by a `logging.Filter` on that logger: message prefix."""

    logger: str
    message_start: str
    why: str


KNOWN_LOG_RECORDS = (
    KnownLogRecord(
        logger="bitsandbytes.backends.cpu.ops",
        message_start="Failed to load CPU gemm_4bit_forward from kernels-community",
        # logged at import (peft imports bitsandbytes) on every CPU machine without the optional `kernels` package
        # and a trust opt-in for a remote kernel repository; bitsandbytes then uses its own CPU 4-bit code, and the
        # tiny models never run 4-bit at all
        why="bitsandbytes falls back to its built-in CPU 4-bit kernel when the optional hub kernel is not trusted",
    ),
    *(
        KnownLogRecord(
            logger="transformers.utils.import_utils",
            message_start=f"`{name}` requires torchvision (not installed); falling back to `{name}Pil`",
            # logged once when diffusers' StableDiffusionPipeline module (MiniGPT-5's image decoder) imports these
            # names as the types of optional pipeline parts we never pass; torchvision cannot be installed on CPU
            # machines (its registry wheel replaces the CPU torch), and the PIL classes are the old behaviour
            why="diffusers imports image-processor types for optional SD parts; without torchvision they are PIL",
        )
        for name in ("CLIPImageProcessor", "SiglipImageProcessor")
    ),
)


class _DropKnownRecords(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


def quiet_known_warnings() -> None:
    """Install the filters above (idempotent: `warnings.filterwarnings` drops duplicates, one log filter each)."""
    for known in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=known.message, category=known.category, module=known.module)
    for known in KNOWN_LOG_RECORDS:
        # the logger object exists before its library creates it, so this works before the import
        target = logging.getLogger(known.logger)
        if not any(isinstance(f, _DropKnownRecords) for f in target.filters):
            prefixes = tuple(k.message_start for k in KNOWN_LOG_RECORDS if k.logger == known.logger)
            target.addFilter(_DropKnownRecords(prefixes))
