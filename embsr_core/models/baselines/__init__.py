"""The paper's baselines (§V-A, Table III); importing this package registers each of them.

Macro-behavior models see only the macro-item sequence; micro-behavior models (RIB, HUP, MKM-SR)
also see the operations. None of them is given the target operation.
"""

from embsr_core.models.baselines import (  # noqa: F401  (imported for registration)
    bert4rec,
    gcsan,
    hup,
    mkmsr,
    narm,
    rib,
    sgnnhn,
    sknn,
    spop,
    srgnn,
    stamp,
)
