"""GPU training throughput: images/s, GPU utilisation and epoch time, AMP on/off x NCHW/channels_last.

    python benchmarks/bench_gpu_training.py [--models resnet18 efficientnet_b1] [--epoch-images 2038]

For each backbone (timm, random init, 2 classes), at 224 px and batch 64: a training step
(forward, cross-entropy, backward, SGD step) on synthetic images already on the GPU, with
AMP (bf16 autocast) off and on, in NCHW and channels_last. Each configuration warms up
(cuDNN autotuning), then trains one "epoch" of ``--epoch-images`` images (default 2,038, the
shared set's labelled images) timed with CUDA synchronisation, while ``nvidia-smi``
samples the GPU's utilisation every 100 ms. The baseline of each model is its fp32 NCHW
row: the ratio column is images/s against it, measured in the same run.

Without a GPU it says so and exits with status 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time

import torch


class UtilisationSampler:
    """GPU utilisation (percent) sampled every 100 ms by ``nvidia-smi -lms`` while running.

    A separate process, so sampling never contends with the training loop for the GIL;
    NaN when ``nvidia-smi`` is missing.
    """

    def start(self) -> None:
        try:
            self._process = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "100"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        except OSError:
            self._process = None

    def stop(self) -> float:
        if self._process is None:
            return float("nan")
        self._process.terminate()
        output, _ = self._process.communicate(timeout=5)
        samples = [float(line) for line in output.split() if line.strip().replace(".", "").isdigit()]
        return statistics.mean(samples) if samples else float("nan")


def bench(
    name: str, amp: bool, channels_last: bool, batch: int, size: int, epoch_images: int, warmup: int
) -> dict:
    import timm

    device = torch.device("cuda")
    model = timm.create_model(name, pretrained=False, num_classes=2).to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=memory_format)
    labels = torch.randint(0, 2, (batch,), device=device)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    print(f"{name} amp={amp} channels_last={channels_last}: warming up", flush=True)
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    steps = max(1, epoch_images // batch)
    sampler = UtilisationSampler()
    sampler.start()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    utilisation = sampler.stop()
    return {
        "model": name,
        "amp": "bf16" if amp else "off",
        "memory_format": "channels_last" if channels_last else "NCHW",
        "batch": batch,
        "size": size,
        "steps": steps,
        "epoch_s": round(seconds, 3),
        "images_per_s": round(steps * batch / seconds, 1),
        "gpu_util_pct": round(utilisation, 1),
        "max_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "efficientnet_b1"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--epoch-images", type=int, default=2038)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench_gpu_training needs a CUDA GPU; none is available here, nothing measured.")
        return 0
    torch.backends.cudnn.benchmark = True
    print(f"{torch.cuda.get_device_name()} torch {torch.__version__}")
    rows = []
    for name in args.models:
        for amp in (False, True):
            for channels_last in (False, True):
                rows.append(
                    bench(name, amp, channels_last, args.batch, args.size, args.epoch_images, args.warmup)
                )
                print(json.dumps(rows[-1]), flush=True)
                torch.cuda.empty_cache()
    print(
        f"{'model':<16}{'AMP':<6}{'layout':<15}{'img/s':>9}{'x fp32 NCHW':>13}{'epoch s':>9}{'GPU %':>7}"
        f"{'GiB':>6}"
    )
    for row in rows:
        base = next(
            r
            for r in rows
            if r["model"] == row["model"] and r["amp"] == "off" and r["memory_format"] == "NCHW"
        )
        row["ratio_vs_fp32_nchw"] = round(row["images_per_s"] / base["images_per_s"], 2)
        print(
            f"{row['model']:<16}{row['amp']:<6}{row['memory_format']:<15}{row['images_per_s']:>9.0f}"
            f"{row['ratio_vs_fp32_nchw']:>13.2f}{row['epoch_s']:>9.2f}{row['gpu_util_pct']:>7.0f}"
            f"{row['max_mem_gib']:>6.1f}"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
