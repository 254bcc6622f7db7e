"""Session recommenders: shared layers once, EMBSR with its ablations/variants, and the baselines.

Importing this package registers every model in :mod:`embsr_core.models.registry`.
"""

from embsr_core.models.registry import ModelSpec, Param, build_model, get_spec, list_specs, resolve_config

__all__ = ["ModelSpec", "Param", "build_model", "get_spec", "list_specs", "resolve_config"]
