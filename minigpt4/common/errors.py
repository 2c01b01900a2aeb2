"""Typed errors with messages that tell the user what to fix.

Entry points catch `MiniGPTError` and print it in one line, without a traceback.
"""

from __future__ import annotations


class MiniGPTError(Exception):
    """Base class of every error we raise on purpose."""


class ConfigError(MiniGPTError, ValueError):
    """A YAML file, a dotted key or an --options override is wrong."""


class RegistryError(MiniGPTError, KeyError):
    """An unknown or duplicate registered name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class CheckpointError(MiniGPTError, RuntimeError):
    """A weight file is missing, unreadable or does not fit the model."""


class DataError(MiniGPTError, ValueError):
    """A dataset file, folder or annotation record is missing or malformed."""


class TrainingError(MiniGPTError, RuntimeError):
    """Training cannot go on (e.g. a non-finite loss); the message names the step and the last good checkpoint."""
