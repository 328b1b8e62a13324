"""The engine's errors: each message says what happened and what to do about it.

The CLI prints ``str(error)`` as one line; the server sends ``error.kind`` and the message to the plug-in.
"""


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""

    kind = "engine"


class InputError(EngineError):
    """The image, mask or option given to the engine cannot be used."""

    kind = "input"


class WeightsError(EngineError):
    """A weights file is missing, corrupt, or does not match the model."""

    kind = "weights"


class CancelledError(EngineError):
    """The job was cancelled by the caller (raised from a progress callback)."""

    kind = "cancelled"


class OutputError(EngineError):
    """An output file cannot be written (permissions, a full disk, a folder in the way)."""

    kind = "output"
