"""Hypothesis strategies shared by the tests."""

from __future__ import annotations

from typing import Literal

from hypothesis import strategies as st

from model.spec import INPUT_SIZE, ResNetSpec, make_spec


@st.composite
def valid_specs(draw: st.DrawFn, *, max_layers: int = 4, max_width: int = 12) -> ResNetSpec:
    """Random valid specs over the whole family, kept narrow so a model builds in milliseconds."""
    n = draw(st.integers(1, max_layers))
    strides, side = [], INPUT_SIZE
    for _ in range(n):
        s = draw(st.sampled_from([s for s in (1, 2, 4) if s <= side]))
        strides.append(s)
        side = -(-side // s)
    global_pool: st.SearchStrategy[Literal["global"]] = st.just("global")
    pool = draw(st.one_of(global_pool, st.integers(1, side)))
    return make_spec(
        blocks=draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)),
        channels=draw(st.lists(st.integers(1, max_width), min_size=n, max_size=n)),
        kernels=draw(st.lists(st.sampled_from([1, 3, 5, 7]), min_size=n, max_size=n)),
        shortcut_kernels=draw(st.lists(st.sampled_from([1, 3]), min_size=n, max_size=n)),
        strides=strides,
        pool=pool,
        stem_channels=draw(st.integers(1, max_width)),
        num_classes=draw(st.integers(1, 12)),
    )
