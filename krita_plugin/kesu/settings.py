"""User settings (grow, threshold, sound effects, engine location): validation and persistence through a store.

Pure Python: the store is any object with ``read(key) -> str | None`` and ``write(key, value: str)``; in Krita
it is Krita's own settings file (``Krita.instance().readSetting/writeSetting``, group "kesu"), so the values
are remembered between sessions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

from .kesu_protocol import GROW_PX, THRESHOLD, option_problem

GROW_RANGE = (int(GROW_PX.lo), int(GROW_PX.hi))  # the engine's limits (kesu_protocol.OPTION_LIMITS)
THRESHOLD_RANGE = (THRESHOLD.lo, THRESHOLD.hi)
DEFAULT_GROW = int(GROW_PX.default)
DEFAULT_THRESHOLD = THRESHOLD.default


class SettingsStore(Protocol):
    def read(self, key: str) -> str | None: ...

    def write(self, key: str, value: str) -> None: ...


class SettingsError(ValueError):
    """A value the user typed that cannot be used; the message says what is allowed."""


@dataclass(frozen=True)
class Settings:
    """``grow_px``: pixels added around the detected text before erasing; ``threshold``: text probability at
    which a pixel counts as text; ``engine_python``: the engine's interpreter ('' = the installer's, from
    plugin.json); ``include_sfx``: Clean Page erases sound effects too, and Detect Text shows their "SFX Mask"
    (off: only dialogue is erased, the sound effects' mask is added hidden)."""

    grow_px: int = DEFAULT_GROW
    threshold: float = DEFAULT_THRESHOLD
    engine_python: str = ""
    include_sfx: bool = False

    def validated(self) -> Settings:
        """Self when every value is usable, else SettingsError naming the bad one."""
        for name in ("grow_px", "threshold"):
            problem = option_problem(name, getattr(self, name))
            if problem:
                raise SettingsError(problem)
        return replace(self, threshold=float(self.threshold), engine_python=self.engine_python.strip(),
                       include_sfx=bool(self.include_sfx))

    def engine_options(self) -> dict[str, Any]:
        """The options sent with every job (names of engine.pipeline.CleanOptions)."""
        return {"grow_px": self.grow_px, "threshold": self.threshold}

    @property
    def text(self) -> str:
        """The kinds of text to erase, as the engine's jobs name them (kesu_protocol.TEXT_CHOICES)."""
        return "all" if self.include_sfx else "dialogue"


def _flag(raw: str) -> bool | None:
    """A stored true/false; None when it is neither (a hand-edited value)."""
    value = raw.strip().lower()
    return True if value in ("true", "1") else False if value in ("false", "0") else None


def load(store: SettingsStore) -> Settings:
    """Settings from ``store``; a missing or unreadable value falls back to its default (never raises), so a
    store written by an older Kesu without some of the keys loads too."""
    values: dict[str, Any] = {}
    for key, parse in (("grow_px", int), ("threshold", float)):
        raw = store.read(key)
        if raw not in (None, ""):
            try:
                values[key] = parse(str(raw).strip())
            except ValueError:
                pass
    raw = store.read("engine_python")
    if raw:
        values["engine_python"] = str(raw)
    raw = store.read("include_sfx")
    if raw and _flag(str(raw)) is not None:
        values["include_sfx"] = _flag(str(raw))
    settings = Settings()
    for key, value in values.items():
        candidate = replace(settings, **{key: value})
        try:
            settings = candidate.validated()
        except SettingsError:
            continue  # a bad stored value (hand-edited kritarc) is ignored, not fatal
    return settings


def save(store: SettingsStore, settings: Settings) -> Settings:
    """Validate and write ``settings``; returns the validated copy (SettingsError if a value is bad)."""
    good = settings.validated()
    store.write("grow_px", str(good.grow_px))
    store.write("threshold", repr(good.threshold))
    store.write("engine_python", good.engine_python)
    store.write("include_sfx", "true" if good.include_sfx else "false")
    return good


def parse(grow: str, threshold: str, engine_python: str, include_sfx: bool = False) -> Settings:
    """Settings from the text of the dialog's fields; SettingsError with a message for the user."""
    try:
        grow_px = int(grow.strip())
    except ValueError:
        raise SettingsError(f"grow must be a whole number of pixels, got {grow!r}") from None
    try:
        thr = float(threshold.strip())
    except ValueError:
        raise SettingsError(f"threshold must be a number between 0 and 1, got {threshold!r}") from None
    return Settings(grow_px, thr, engine_python, include_sfx).validated()
