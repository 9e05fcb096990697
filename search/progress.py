"""Progress output for long work: a bar on a terminal, one line per step in logs."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from typing import Never

    from tqdm import tqdm

    from model.training import EpochRecord


class EpochProgress:
    """Per-epoch progress of one training run, fed by the engine's ``on_epoch_end``.

    On a terminal it is a tqdm bar with loss and accuracy; elsewhere (logs, CI, pipes) it
    prints one line per epoch, which a bar's carriage returns would garble.
    """

    def __init__(self, *, total: int, desc: str, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.desc = desc
        self.bar: tqdm[Never] | None = None
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="epoch", file=self.stream)

    def update(self, record: EpochRecord) -> None:
        val = "-" if record.val_accuracy is None else f"{record.val_accuracy:.4f}"
        if self.bar is not None:
            if self.bar.n == 0 and record.epoch > 1:  # resumed from a checkpoint
                self.bar.update(record.epoch - 1)
            self.bar.set_postfix(
                loss=f"{record.train_loss:.3f}", val=val, ips=f"{record.images_per_second:,.0f}"
            )
            self.bar.update(1)
        else:
            print(
                f"{self.desc} epoch {record.epoch}/{self.total}: loss {record.train_loss:.4f}, "
                f"val {val}, {record.seconds:.1f} s, {record.images_per_second:,.0f} images/s",
                file=self.stream,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
