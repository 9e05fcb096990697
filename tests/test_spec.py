"""The spec: validation with clear errors, derived sizes and names."""

from __future__ import annotations

import pytest

from model.spec import ResNetSpec, SpecError, make_spec, spec_from_dict


def test_defaults_follow_kuangliu() -> None:
    spec = make_spec(blocks=[2, 2, 2, 2], channels=[64, 128, 256, 512])
    assert spec.strides == (1, 2, 2, 2)
    assert spec.kernels == (3, 3, 3, 3)
    assert spec.shortcut_kernels == (1, 1, 1, 1)
    assert spec.map_sizes == (32, 16, 8, 4)
    assert spec.pooled_size == 1
    assert spec.name == "ResNet18-B2222"


def test_per_layer_values_and_name_shows_what_differs() -> None:
    spec = make_spec(
        blocks=[1, 2],
        channels=[16, 32],
        kernels=[5, 3],
        shortcut_kernels=3,
        strides=[2, 2],
        pool="global",
        stem_channels=8,
        num_classes=100,
    )
    assert spec.kernels == (5, 3)
    assert spec.shortcut_kernels == (3, 3)
    assert spec.map_sizes == (16, 8)
    assert spec.name == "ResNet8-B12-C16.32-F53-K33-S22-Pglobal-stem8-cls100"


def test_multi_digit_blocks_are_separated_in_the_name() -> None:
    spec = make_spec(blocks=[14, 13], channels=[64, 128], strides=[2, 4])
    assert spec.name == "ResNet56-B14.13-S24"


def test_pool_leaves_a_larger_map() -> None:
    spec = make_spec(blocks=[1, 1, 1], channels=[8, 8, 8], strides=[1, 2, 2], pool=2)
    assert spec.map_sizes[-1] == 8
    assert spec.pooled_size == 4


def test_round_trip_through_dict() -> None:
    spec = make_spec(blocks=[4, 5, 3], channels=[64, 128, 256], strides=[1, 2, 4], pool=4)
    assert spec_from_dict(spec.to_dict()) == spec


def test_specs_are_hashable_and_compare_by_value() -> None:
    a = make_spec(blocks=[1], channels=[4])
    b = make_spec(blocks=[1], channels=[4])
    assert a == b and hash(a) == hash(b)
    assert a != make_spec(blocks=[1], channels=[4], pool="global")


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        (dict(blocks=[], channels=[]), "blocks", "at least one"),
        (dict(blocks=[1, 1], channels=[8]), "channels", "1 entries but there are 2 layers"),
        (dict(blocks=[1, 1], channels=[8, 8], strides=[1]), "strides", "1 entries"),
        (dict(blocks=[1, 1], channels=[8, 8], kernels=[3, 3, 3]), "kernels", "3 entries"),
        (dict(blocks=[0], channels=[8]), "blocks[0]", "positive integer"),
        (dict(blocks=[1], channels=[-8]), "channels[0]", "positive integer"),
        (dict(blocks=[1], channels=[8.0]), "channels[0]", "positive integer"),
        (dict(blocks=[True], channels=[8]), "blocks[0]", "positive integer"),
        (dict(blocks=[1, 1], channels=[8, 8], kernels=[3, 4]), "kernels[1]", "odd"),
        (dict(blocks=[1], channels=[8], shortcut_kernels=2), "shortcut_kernels[0]", "odd"),
        (dict(blocks=[1], channels=[8], kernels=0), "kernels[0]", "positive integer"),
        (dict(blocks=[1], channels=[8], strides=[0]), "strides[0]", "positive integer"),
        (dict(blocks=[1], channels=[8], stem_channels=0), "stem_channels", "positive"),
        (dict(blocks=[1], channels=[8], num_classes=0), "num_classes", "positive"),
        (dict(blocks=[1] * 3, channels=[8] * 3, strides=[4, 4, 4]), "strides[2]", "below 1x1"),
        (dict(blocks=[1], channels=[8], strides=[64]), "strides[0]", "32x32 map below 1x1"),
        (
            dict(blocks=[1, 1, 1], channels=[8] * 3, strides=[1, 2, 4], pool=8),
            "pool",
            "larger than the last feature map (4x4)",
        ),
        (dict(blocks=[1], channels=[8], pool=0), "pool", "positive integer or 'global'"),
        (dict(blocks=[1], channels=[8], pool="avg"), "pool", "positive integer or 'global'"),
    ],
)
def test_invalid_specs_name_field_and_value(kwargs: dict, field: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        make_spec(**kwargs)
    assert info.value.field == field
    message = str(info.value)
    assert message.startswith(f"invalid architecture: {field}=")
    assert fragment in message
    assert "\n" not in message


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(SpecError, match="kernels"):
        ResNetSpec(blocks=(1,), channels=(8,), kernels=(2,), shortcut_kernels=(1,), strides=(1,))
