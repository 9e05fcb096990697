"""Training throughput of the engine against a reference loop written like the paper's.

The reference is the paper's code path: torchvision RandomCrop(32, padding=4) +
RandomHorizontalFlip + ToTensor + Normalize on PIL images, a DataLoader with 2 workers,
batch 128, fp32, SGD. The engine is ``model.engine.train``: the uint8 data set on the device,
batched augmentation, bf16 + channels_last on CUDA. Same architecture, same data, same
machine, one run; the figure that matters is the ratio.

CPU (small architecture, synthetic or real subset):
    python benchmarks/bench_engine.py --device cpu --data-dir /work/shared/data \
        --train-subset 5000 --epochs 3 --ref-steps 20

GPU (ResNet26-B453, real data, a few epochs, plus model-FLOP utilisation):
    python benchmarks/bench_engine.py --device cuda --arch ResNet26-B453 --data-dir data \
        --epochs 3 --batch-sizes 128,512 --compile

Within a time budget (benchmarks/gpu_proof.sh): ``--budget SECONDS`` stops the engine runs
when it is spent (a run ends after the epoch that crosses it; a run that would not fit is
skipped and listed as such), and ``--json PATH`` rewrites the figures to PATH after each
measurement, so a run stopped from outside keeps what it had measured.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from datetime import date
from pathlib import Path

import torch
import torchvision.transforms as T
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from model.accounting import count_macs, count_params
from model.architectures import architecture
from model.data import CIFAR10_MEAN, CIFAR10_STD, DataSplits, Split, load_data
from model.engine import OutOfMemory, device_name, resolve_device, train
from model.network import build_model
from model.recipe import TrainConfig
from model.spec import ResNetSpec, make_spec

# Dense bf16 tensor-core peak (no sparsity), for model-FLOP utilisation.
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0}
COMPILE_SECONDS = 20.0
"""What compiling adds to a run, for deciding whether a compiled run fits ``--budget`` (about
17 s for ResNet26-B453 on an H200: a first epoch of 19.3 s against 2.4 s eager)."""


class _PilDataset(Dataset):
    """What torchvision's CIFAR10 does per sample: a PIL image from a HWC uint8 array."""

    def __init__(self, split: Split, transform: T.Compose) -> None:
        self.images = split.images.permute(0, 2, 3, 1).contiguous().numpy()
        self.labels = split.labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def reference_images_per_second(
    spec: ResNetSpec, split: Split, device: torch.device, *, steps: int, warmup: int
) -> float:
    """The paper's loop, timed over ``steps`` batches after ``warmup`` batches."""
    transform = T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(CIFAR10_MEAN, CIFAR10_STD),
        ]
    )
    loader = DataLoader(
        _PilDataset(split, transform),
        batch_size=128,
        shuffle=True,
        num_workers=2,
        drop_last=True,
        persistent_workers=True,
    )
    torch.manual_seed(0)
    net = build_model(spec).to(device).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    criterion = nn.CrossEntropyLoss()
    done, images, t0 = 0, 0, 0.0
    while done < warmup + steps:
        for x, y in loader:
            if done == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0, images = time.perf_counter(), 0
            x, y = x.to(device), y.to(device)
            loss = criterion(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()  # the paper's loop reads the loss every step
            images += len(y)
            done += 1
            if done == warmup + steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return images / (time.perf_counter() - t0)


def check_out_of_memory(data: DataSplits, device: torch.device) -> None:
    """A model far too big for the batch must raise OutOfMemory and leave the GPU usable."""
    huge = make_spec(blocks=[2], channels=[1024], strides=[1], stem_channels=1024)
    try:
        train(huge, data, TrainConfig(epochs=1, batch_size=len(data.train)), device=device)
        print("out-of-memory check: no error raised (the GPU is larger than expected)")
    except OutOfMemory as e:
        free, total = torch.cuda.mem_get_info(device)
        print(f"out-of-memory check: {e}")
        print(f"  after it: {free / 2**30:.1f} of {total / 2**30:.1f} GiB free")
    small = make_spec(blocks=[1, 1], channels=[32, 64], stem_channels=32)
    again = train(
        small, data, TrainConfig(epochs=1, batch_size=512, schedule="cosine"), device=device
    )
    print(f"  next run in the same process: val accuracy {again.val_accuracy:.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--arch", help="a named architecture (default: --blocks/--channels)")
    p.add_argument("--blocks", default="1,1,1")
    p.add_argument("--channels", default="16,32,64")
    p.add_argument("--stem-channels", type=int, default=16)
    p.add_argument("--strides", help="per layer, e.g. 1,2,4 (default: 1 then 2)")
    p.add_argument(
        "--dataset",
        default=None,
        help="cifar10 or synthetic (default: cifar10 when --data-dir is given, else synthetic)",
    )
    p.add_argument("--data-dir")
    p.add_argument("--train-subset", type=int)
    p.add_argument("--val-size", type=int, default=5000)
    p.add_argument("--epochs", type=int, default=3, help="engine epochs (first one is warm-up)")
    p.add_argument("--batch-sizes", default="128", help="engine batch sizes to measure")
    p.add_argument("--compile", action="store_true", help="also measure with torch.compile")
    p.add_argument("--ref-steps", type=int, default=100, help="reference batches timed")
    p.add_argument("--ref-warmup", type=int, default=10)
    p.add_argument(
        "--oom-check",
        action="store_true",
        help="also provoke a CUDA out-of-memory and train again in the same process",
    )
    p.add_argument("--peak-tflops", type=float, help="override the GPU's bf16 peak for MFU")
    p.add_argument("--budget", type=float, metavar="SECONDS", help="stop the engine runs then")
    p.add_argument("--json", metavar="PATH", help="also write the figures there, as they come")
    args = p.parse_args()
    deadline = time.perf_counter() + args.budget if args.budget else math.inf

    device = resolve_device(args.device)
    if args.arch:
        spec = architecture(args.arch)
    else:
        spec = make_spec(
            blocks=[int(v) for v in args.blocks.split(",")],
            channels=[int(v) for v in args.channels.split(",")],
            stem_channels=args.stem_channels,
            strides=[int(v) for v in args.strides.split(",")] if args.strides else None,
        )
    dataset = args.dataset or ("cifar10" if args.data_dir else "synthetic")
    t0 = time.perf_counter()
    data = load_data(
        dataset=dataset,
        data_dir=args.data_dir,
        train_subset=args.train_subset,
        val_size=args.val_size,
        synthetic_size=(args.val_size + (args.train_subset or 5000), 1000)
        if dataset == "synthetic"
        else (5000, 1000),
    )
    print(
        f"data: {data.source}, {len(data.train)} train images, loaded in "
        f"{time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    macs = count_macs(spec)
    name = device_name(device)
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    print(f"machine: {platform.machine()} {name}, torch {torch.__version__}, {date.today()}")
    print(f"architecture: {spec.name}, {count_params(spec):,} params, {macs / 1e6:.1f} M MACs")

    ref = reference_images_per_second(
        spec, data.train, device, steps=args.ref_steps, warmup=args.ref_warmup
    )
    print(
        f"reference loop (PIL transforms, DataLoader 2 workers, batch 128, fp32): "
        f"{ref:,.0f} images/s",
        flush=True,
    )
    rows: list[dict[str, object]] = []
    figures = {"device": name, "arch": spec.name, "macs": macs, "train_images": len(data.train)}
    figures.update(reference=round(ref, 1), engine=rows)
    write_json(args.json, figures)
    last_run = 0.0
    batches = [int(b) for b in args.batch_sizes.split(",")]
    variants = [(b, False) for b in batches]
    if args.compile and device.type == "cuda":
        variants.append((batches[-1], True))  # compiling takes a minute: the largest batch only
    for batch, compiled in variants:
        needed = last_run + (COMPILE_SECONDS if compiled else 0.0)
        if deadline - time.perf_counter() < needed:
            rows.append({"batch": batch, "compile": compiled, "skipped": "time budget"})
            print(f"engine batch {batch}{' compiled' if compiled else ''}: skipped (time budget)")
            continue
        started = time.perf_counter()
        config = TrainConfig(
            epochs=args.epochs,
            batch_size=batch,
            lr=0.1,
            schedule="cosine",
            warmup_epochs=0.5,
            compile=compiled,
        )
        result = train(
            spec, data, config, device=device, on_epoch_end=lambda _: time.perf_counter() > deadline
        )
        last_run = time.perf_counter() - started
        ips = result.images_per_second
        row = {
            "batch": batch,
            "compile": compiled,
            "images_per_second": round(ips, 1),
            "ratio": round(ips / ref, 2),
            "epoch_seconds": [round(r.seconds, 2) for r in result.history],
            "val_accuracy": result.val_accuracy,
        }
        if peak and device.type == "cuda":
            row["mfu"] = round(6 * macs * ips / (peak * 1e12), 4)
        rows.append(row)
        mfu = f", MFU {row['mfu']:.1%}" if "mfu" in row else ""
        print(
            f"engine batch {batch}{' compiled' if compiled else ''}: {ips:,.0f} images/s "
            f"= {ips / ref:.1f}x the reference{mfu} (epochs {row['epoch_seconds']} s, "
            f"val accuracy {result.val_accuracy:.4f})",
            flush=True,
        )
        write_json(args.json, figures)
    if args.oom_check:
        check_out_of_memory(data, device)
    print(
        json.dumps({"device": name, "arch": spec.name, "reference": round(ref, 1), "engine": rows}),
        file=sys.stderr,
    )


def write_json(path: str | None, figures: dict[str, object]) -> None:
    """Replace ``path`` (if given) with ``figures``, whole: a reader never sees half a file."""
    if path:
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps(figures) + "\n")
        tmp.replace(path)


if __name__ == "__main__":
    main()
