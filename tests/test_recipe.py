"""Training recipes: validation and the learning-rate schedules."""

from __future__ import annotations

import itertools

import pytest

from model.recipe import TrainConfig, lr_at


def test_schedules() -> None:
    cfg = TrainConfig(epochs=10, lr=1.0, schedule="cosine", warmup_epochs=1)
    lrs = [lr_at(s, config=cfg, steps_per_epoch=10) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert max(lrs) == pytest.approx(1.0) and lrs[-1] < 0.001
    assert all(a >= b for a, b in itertools.pairwise(lrs[9:]))
    paper = TrainConfig(epochs=4, lr=1.0, schedule="paper")
    per_epoch = [lr_at(s, config=paper, steps_per_epoch=5) for s in range(20)]
    assert per_epoch[:5] == [1.0] * 5  # stepped once per epoch, like CosineAnnealingLR
    assert per_epoch[5] == pytest.approx(0.5 * (1 + 0.7071067811865476))
    linear = TrainConfig(epochs=2, lr=1.0, schedule="linear")
    assert lr_at(10, config=linear, steps_per_epoch=10) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"epochs": 0}, "epochs=0"),
        ({"schedule": "step"}, "schedule='step' must be one of cosine, linear, paper"),
        ({"lr": -1.0}, "lr=-1.0"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"nesterov": True, "momentum": 0.0}, "nesterov"),
    ],
)
def test_bad_recipe_is_refused(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match="training recipe") as info:
        TrainConfig(**kwargs)
    assert fragment in str(info.value)
