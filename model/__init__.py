"""The model side of optuna-search: plain PyTorch, no Optuna.

The architecture family and its accounting are plain Python and import instantly; the
torch-backed parts (the network, data and training engine) load on first use, so that
``optuna-search --help`` and the budget check never pay for importing torch.

Example:
    >>> import model
    >>> model.count_params(model.architecture("ResNet10"))
    4903242
"""

from __future__ import annotations

import importlib
from typing import Any

from model.accounting import Conv, PartCost, breakdown, convs, count_macs, count_params
from model.architectures import (
    NAMED_ARCHITECTURES,
    PAPER_TABLES,
    UnknownArchitectureError,
    architecture,
    paper_name,
)
from model.spec import ResNetSpec, SpecError, make_spec, spec_from_dict

# Torch-backed names, imported lazily from their modules (PEP 562).
_LAZY = {
    "ResNet": "model.network",
    "build_model": "model.network",
}

__all__ = [
    "Conv",
    "NAMED_ARCHITECTURES",
    "PAPER_TABLES",
    "PartCost",
    "ResNetSpec",
    "SpecError",
    "UnknownArchitectureError",
    "architecture",
    "breakdown",
    "convs",
    "count_macs",
    "count_params",
    "make_spec",
    "paper_name",
    "spec_from_dict",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'model' has no attribute {name!r}")
