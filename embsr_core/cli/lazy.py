"""Options whose choices or default live in a heavy module, loaded only when a command needs them.

`embsr --help` builds every command's options but shows none of their choices; loading pandas, optuna
or PyTorch to build them would make every start take seconds. :class:`LazyChoice` and :func:`lazy_value`
defer that to the moment a command's own help is shown or its arguments are parsed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import click


def lazy_value(module: str, name: str, convert: Callable[[Any], Any] = lambda v: v) -> Callable[[], Any]:
    """A zero-argument function returning ``convert(module.name)``, imported on the first call."""

    def load() -> Any:
        return convert(getattr(importlib.import_module(module), name))

    return load


class LazyChoice(click.Choice):
    """A :class:`click.Choice` whose list of choices comes from ``load()`` on first use."""

    def __init__(self, load: Callable[[], Sequence[str]], case_sensitive: bool = True):
        self._load = load
        self._loaded: Sequence[str] | None = None
        self.case_sensitive = case_sensitive

    @property  # type: ignore[override]
    def choices(self) -> Sequence[str]:  # click reads (never writes) it after __init__
        if self._loaded is None:
            self._loaded = [str(c) for c in self._load()]
        return self._loaded

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:
        self._loaded = list(value)


class LazyOption(click.Option):
    """A :class:`click.Option` whose help text and/or default come from ``lazy_help()`` / ``lazy_default()``,
    computed when this command's help is shown or its arguments are parsed (``cls=LazyOption``)."""

    def __init__(self, *args: Any, lazy_help: Callable[[], str] | None = None,
                 lazy_default: Callable[[], Any] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._lazy_help, self._lazy_default = lazy_help, lazy_default

    def _materialise(self) -> None:
        if self._lazy_help is not None:
            self.help, self._lazy_help = self._lazy_help(), None
        if self._lazy_default is not None:
            self.default, self._lazy_default = self._lazy_default(), None

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self._materialise()
        return super().get_help_record(ctx)

    def get_default(self, ctx: click.Context, call: bool = True) -> Any:
        self._materialise()
        return super().get_default(ctx, call=call)


class LazyModule:
    """Stands for a module, imported on the first attribute read: ``reports = LazyModule("embsr_core.reports")``."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)
