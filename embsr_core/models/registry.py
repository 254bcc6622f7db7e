"""Model registry: name → builder + hyperparameter schema.

The GUI builds its forms and the CLI its flags from :class:`Param` lists, so a model's knobs are
declared once, here, with type, range, default and help text.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ParamType = Literal["int", "float", "bool", "choice", "str"]


@dataclass(frozen=True)
class Param:
    """One hyperparameter as shown to a user."""

    name: str
    type: ParamType
    default: Any
    help: str
    low: float | None = None  # inclusive bounds for int/float
    high: float | None = None
    choices: tuple[Any, ...] = ()  # for type == "choice"
    # Values the tuner tries (``embsr tune``); empty = not tuned. Declared here, beside the knob, so a
    # model's sensitive settings (w_k, mask probability, ...) are searched without a table in the tuner.
    search: tuple[Any, ...] = ()

    def validate(self, value: Any) -> Any:
        """Coerce ``value`` to this parameter's type or raise ``ValueError`` naming the parameter."""
        try:
            if self.type == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                value = int(value)
            elif self.type == "float":
                value = float(value)
            elif self.type == "bool":
                if isinstance(value, str):
                    if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError
                    value = value.lower() in ("true", "1", "yes")
                else:
                    value = bool(value)
            elif self.type == "choice":
                if value not in self.choices:
                    # accept the string form of numeric choices (CLI / forms give strings)
                    matches = [c for c in self.choices if str(c) == str(value)]
                    if not matches:
                        raise ValueError
                    value = matches[0]
            elif self.type == "str":
                value = str(value)
        except (TypeError, ValueError):
            expected = f"one of {list(self.choices)}" if self.type == "choice" else f"a {self.type}"
            raise ValueError(f"{self.name}: expected {expected}, got {value!r}") from None
        if self.type in ("int", "float"):
            if self.type == "float" and not math.isfinite(value):  # NaN compares false with every bound
                raise ValueError(f"{self.name}: expected a finite number, got {value!r}")
            if self.low is not None and value < self.low:
                raise ValueError(f"{self.name}: {value} is below the minimum {self.low}")
            if self.high is not None and value > self.high:
                raise ValueError(f"{self.name}: {value} is above the maximum {self.high}")
        return value


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to build it and which hyperparameters it takes."""

    name: str
    family: Literal["embsr", "ablation", "variant", "baseline-macro", "baseline-micro"]
    description: str
    params: tuple[Param, ...]
    builder: Callable[[int, int, dict[str, Any]], Any]  # (n_items, n_ops, config) -> SessionRecommender
    uses_operations: bool = True
    fixed: Mapping[str, Any] = field(default_factory=dict)  # switches this name pins (ablations)
    # what a *stored* configuration without a hyperparameter meant: it was saved before the parameter
    # existed, when the model behaved as this value does (not as today's default)
    absent: Mapping[str, Any] = field(default_factory=dict)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"model {self.name} has no hyperparameter {name!r}")

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}


_REGISTRY: dict[str, ModelSpec] = {}
# Modules whose import registers models; imported lazily so that `import embsr_core` stays light.
_PROVIDERS = ("embsr_core.models.embsr", "embsr_core.models.baselines")
_loaded = False


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def _ensure_loaded() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _PROVIDERS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # a provider not written yet must not break the others
            if exc.name != module:
                raise


def list_specs() -> list[ModelSpec]:
    _ensure_loaded()
    return list(_REGISTRY.values())


def get_spec(name: str) -> ModelSpec:
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown model {name!r}; known models: {known}") from None


def resolve_config(name: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults of ``name`` updated by ``overrides``, each validated; unknown keys are an error."""
    spec = get_spec(name)
    config = spec.defaults()
    for key, value in (overrides or {}).items():
        config[key] = spec.param(key).validate(value)
    return config


def stored_config(name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """A configuration read back from a checkpoint, run or model file, completed as it was meant.

    A key missing from it was not a hyperparameter yet when it was saved, so it takes the value that
    reproduces the model of that time (``ModelSpec.absent``), not a default chosen later; other keys
    are validated as in :func:`resolve_config`.
    """
    spec = get_spec(name)
    names = {p.name for p in spec.params}
    return resolve_config(name, {**{k: v for k, v in spec.absent.items() if k in names}, **config})


def build_model(name: str, n_items: int, n_ops: int, overrides: Mapping[str, Any] | None = None) -> Any:
    spec = get_spec(name)
    config = resolve_config(name, overrides)
    return spec.builder(n_items, n_ops, config)
