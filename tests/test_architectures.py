"""The paper's named architectures reproduce its printed parameter counts exactly."""

from __future__ import annotations

import pytest

from model.accounting import count_params
from model.architectures import (
    NAMED_ARCHITECTURES,
    PAPER_TABLES,
    UnknownArchitectureError,
    architecture,
    paper_name,
)

# seed-code-facts.md, counted by an independent builder from the paper's code.
EXPECTED = {
    "ResNet18": 11_173_962,
    "ResNet10": 4_903_242,
    "ResNet12": 4_977_226,
    "ResNet12-B": 5_198_666,
    "ResNet14": 5_051_210,
    "ResNet26-B453": 4_992_586,
    "ResNet26-B543": 4_771_146,
    "ResNet56": 4_818_378,
    "ResNet26-B453-C": 3_618_890,
    "ResNet30": 4_947_530,
    "ResNet26-B453-P8": 4_992_586,
    "ResNet26-B453-P2": 4_992_586,
}


@pytest.mark.parametrize(("name", "params"), EXPECTED.items())
def test_named_architecture_matches_paper(name: str, params: int) -> None:
    assert count_params(architecture(name)) == params


def test_every_named_architecture_is_checked() -> None:
    assert set(NAMED_ARCHITECTURES) == set(EXPECTED)


def test_every_printed_count_is_reproduced() -> None:
    for row in PAPER_TABLES:
        if row.printed_params is not None:
            assert count_params(architecture(row.architecture)) == row.printed_params, row


def test_strides_are_the_codes() -> None:
    assert architecture("ResNet18").strides == (1, 2, 2, 2)
    assert architecture("ResNet26-B453").strides == (1, 2, 4)
    assert architecture("ResNet56").strides == (2, 4)


def test_pool_variants_change_strides_not_the_count() -> None:
    p8, p2 = architecture("ResNet26-B453-P8"), architecture("ResNet26-B453-P2")
    assert (p8.strides, p8.pool, p8.pooled_size) == ((1, 2, 2), 8, 1)
    assert (p2.strides, p2.pool, p2.pooled_size) == ((1, 4, 4), 2, 1)


def test_lookup_is_case_insensitive_and_reversible() -> None:
    spec = architecture("resnet26-b453")
    assert paper_name(spec) == "ResNet26-B453"
    assert spec.name == "ResNet26-B453-S124"


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownArchitectureError) as info:
        architecture("ResNet99")
    assert "ResNet99" in str(info.value) and "ResNet26-B453" in str(info.value)
