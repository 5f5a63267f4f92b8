"""DermGAN generator benchmarks (CPU by default; CUDA with --device cuda).

    .venv/bin/python bench/bench_generator.py            # everything, prints markdown tables
    .venv/bin/python bench/bench_generator.py --quick    # fewer rounds

Every comparison is measured in the same run, alternating the candidates round by round
and keeping the median, so load from other processes on the machine hits all of them alike.
Figures go into the "DermGAN" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generation.dataset import PairSet  # noqa: E402
from generation.networks import count_parameters, define_G  # noqa: E402
from generation.train import preset, steps_per_second  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def alternate(candidates: dict[str, Callable[[], int]], rounds: int, device: torch.device) -> dict[str, float]:
    """Items per second of each candidate (each call returns how many items it did), median of rounds."""
    for fn in candidates.values():  # warm-up
        fn()
    rates: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            sync(device)
            t0 = time.perf_counter()
            n = fn()
            sync(device)
            rates[name].append(n / (time.perf_counter() - t0))
    return {name: statistics.median(v) for name, v in rates.items()}


def matmul_gflops(device: torch.device, n: int = 2048, dtype=torch.float32) -> Callable[[], int]:
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)

    def run() -> int:
        for _ in range(4):
            a @ b
        return 4 * 2 * n**3 // 10**9  # GFLOP done

    return run


def generator_flops(net: torch.nn.Module, size: int) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, 3, size, size))
    return counter.get_total_flops()


def inference(net, batch: int, size: int, device, *, mode: str = "inference", channels_last: bool = False,
              dtype=torch.float32) -> Callable[[], int]:
    x = torch.randn(batch, 3, size, size, device=device, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def run() -> int:
        if mode == "inference":
            with torch.inference_mode():
                net(x)
        elif mode == "no_grad":
            with torch.no_grad():
                net(x)
        else:
            net(x)
        return batch

    return run


def fmt_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--compile", action="store_true", help="also try torch.compile (slow to compile on 2 cores)")
    parser.add_argument("--sections", default="1,2,3,4,5,6,7", help="which sections to run (comma-separated)")
    parser.add_argument("--json", action="store_true", help="section 7 also prints its figures as one JSON object")
    args = parser.parse_args()
    sections = {int(s) for s in args.sections.split(",")}
    device = torch.device(args.device)
    rounds = 2 if args.quick else 3
    torch.manual_seed(0)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, device {device}, load average {os.getloadavg()}")

    paper = preset("paper")
    if 1 in sections or 2 in sections or 3 in sections:
        inference_sections(args, sections, device, rounds, paper)
    if 4 in sections:
        training_section(device)
    if 5 in sections and device.type == "cpu":
        training_threads_section(rounds)
    if 6 in sections:
        demo_preset_section(device, rounds)
    if 7 in sections:
        upsampling_section(device, rounds, as_json=args.json)
    print(f"\nload average at end: {os.getloadavg()}")


def inference_sections(args, sections, device, rounds, paper) -> None:
    # 1. The roof and the two generators at the paper preset.
    resize = define_G(**paper.generator_args()).to(device).eval()
    transposed = define_G(**{**paper.generator_args(), "upsample": "transposed"}).to(device).eval()
    flops = {"resize": generator_flops(resize.cpu(), 256), "transposed": generator_flops(transposed.cpu(), 256)}
    resize, transposed = resize.to(device), transposed.to(device)
    rates = alternate({
        "matmul": matmul_gflops(device),
        "resize b1": inference(resize, 1, 256, device), "transposed b1": inference(transposed, 1, 256, device),
        "resize b16": inference(resize, 16, 256, device), "transposed b16": inference(transposed, 16, 256, device),
    }, rounds, device)
    roof = rates.pop("matmul")
    rows = []
    for name, rate in rates.items():
        kind = name.split()[0]
        gflops = rate * flops[kind] / 1e9
        rows.append([name, f"{count_parameters(resize if kind == 'resize' else transposed) / 1e6:.1f} M",
                     f"{flops[kind] / 1e9:.1f}", f"{rate:.2f}", f"{gflops:.0f}", f"{gflops / roof:.0%}"])
    print(f"\nfp32 matmul 2048^3 roof: {roof:.0f} GFLOP/s\n")
    print(fmt_table(["generator (paper, 256x256)", "params", "GFLOP/img", "img/s", "GFLOP/s", "of matmul roof"], rows))

    # 2. What pays for inference (resize generator, batch 16 unless stated).
    cl = define_G(**paper.generator_args()).to(device).eval().to(memory_format=torch.channels_last)
    cl.load_state_dict(resize.state_dict())
    candidates = {
        "baseline: grad enabled, b16": inference(resize, 16, 256, device, mode="grad"),
        "no_grad, b16": inference(resize, 16, 256, device, mode="no_grad"),
        "inference_mode, b16": inference(resize, 16, 256, device),
        "inference_mode + channels_last, b16": inference(cl, 16, 256, device, channels_last=True),
        "inference_mode, b1": inference(resize, 1, 256, device),
        "inference_mode + channels_last, b1": inference(cl, 1, 256, device, channels_last=True),
    }
    if device.type == "cuda":
        bf = define_G(**paper.generator_args()).to(device).eval().to(dtype=torch.bfloat16)
        bf.load_state_dict(resize.state_dict())
        candidates["bf16 weights + inference_mode, b16"] = inference(bf, 16, 256, device, dtype=torch.bfloat16)
    if args.compile:
        compiled = torch.compile(resize)
        candidates["torch.compile + inference_mode, b16"] = inference(compiled, 16, 256, device)
    rates = alternate(candidates, rounds, device)
    base = rates["baseline: grad enabled, b16"]
    print("\n" + fmt_table(["inference variant (paper G, 256x256)", "img/s", "vs grad-enabled b16"],
                           [[k, f"{v:.2f}", f"{v / base:.2f}x"] for k, v in rates.items()]))

    # 3. Threads (CPU only): 1 vs all.
    if device.type == "cpu" and torch.get_num_threads() > 1:
        all_threads = torch.get_num_threads()
        run = inference(cl, 4, 256, device, channels_last=True)

        def with_threads(n):
            def go():
                torch.set_num_threads(n)
                try:
                    return run()
                finally:
                    torch.set_num_threads(all_threads)
            return go

        rates = alternate({f"{all_threads} threads": with_threads(all_threads), "1 thread": with_threads(1)}, rounds, device)
        print("\n" + fmt_table(["threads (channels_last, inference_mode, b4)", "img/s"], [[k, f"{v:.2f}"] for k, v in rates.items()]))



def upsampling_section(device, rounds: int, *, as_json: bool = False) -> None:
    """7. The three upsamplings at the same width (paper G at 256 and demo G at 128), fp32 and
    bf16 autocast, alternated in one run: is the shipped family as fast as transposed?"""
    from generation.sample import cpu_has_bf16

    out: dict = {"bf16_native": cpu_has_bf16(), "rates": {}}
    for label, cfg, size in (("paper 256", preset("paper"), 256), ("demo 128", preset("demo"), 128)):
        nets = {}
        for kind in ("transposed", "resize", "subpixel"):
            net = define_G(**{**cfg.generator_args(), "upsample": kind}).to(device).eval()
            nets[kind] = net.to(memory_format=torch.channels_last)
        flops = {kind: generator_flops(define_G(**{**cfg.generator_args(), "upsample": kind}).eval(), size) for kind in nets}

        def run(net, batch, bf16):
            x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
            noise = net.draw_noise(batch, size, size, device=device) if net.noise_nc else None

            def go() -> int:
                with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    net(x, noise) if noise is not None else net(x)
                return batch
            return go

        candidates = {f"{kind} {prec} b{batch}": run(net, batch, prec == "bf16")
                      for batch in (1, 16) for kind, net in nets.items() for prec in ("fp32", "bf16")}
        rates = alternate(candidates, rounds, device)
        rows = []
        for batch in (1, 16):
            base = rates[f"transposed fp32 b{batch}"]
            for kind in nets:
                for prec in ("fp32", "bf16"):
                    rate = rates[f"{kind} {prec} b{batch}"]
                    rows.append([f"{kind} {prec} b{batch}", f"{flops[kind] / 1e9:.2f}", f"{rate:.2f}", f"{rate / base:.2f}x"])
        print("\n" + fmt_table([f"upsampling ({label}, same width)", "GFLOP/img", "img/s", "vs transposed fp32"], rows))
        out["rates"][label] = {k: round(v, 3) for k, v in rates.items()}
        out.setdefault("gflop_per_image", {})[label] = {k: round(v / 1e9, 3) for k, v in flops.items()}
    if as_json:
        print(json.dumps(out))


def training_section(device) -> None:
    # 4. Training steps for both presets (random pairs; the data path is not the bottleneck).
    rows = []
    for name, extra in (("fast, contiguous", {"channels_last": False}), ("fast, channels_last", {"channels_last": True}),
                        ("paper, contiguous", {"channels_last": False}), ("paper, channels_last", {"channels_last": True})):
        cfg = preset(name.split(",")[0], device=str(device), **extra)
        s = cfg.image_size
        pairs = PairSet.from_tensors(torch.randint(0, 255, (32, 3, s, s), dtype=torch.uint8),
                                     torch.randint(0, 255, (32, 3, s, s), dtype=torch.uint8))
        sps = steps_per_second(cfg, pairs, steps=3 if cfg.preset == "paper" else 10, warmup=1)
        rows.append([name, f"{s}x{s}", str(cfg.batch_size), f"{1000 / sps:.0f}", f"{sps * cfg.batch_size:.2f}"])
    print("\n" + fmt_table(["training preset", "crop", "batch", "ms/step", "img/s"], rows))


def training_threads_section(rounds: int) -> None:
    # 5. Fast-preset training with torch's default threads vs one thread, alternating rounds.
    from generation.train import Trainer

    all_threads = torch.get_num_threads()
    cfg = preset("fast", device="cpu")
    pairs = PairSet.from_tensors(torch.randint(0, 255, (64, 3, 64, 64), dtype=torch.uint8),
                                 torch.randint(0, 255, (64, 3, 64, 64), dtype=torch.uint8))
    trainer = Trainer(cfg)

    def steps_with(n: int) -> Callable[[], int]:
        def go() -> int:
            torch.set_num_threads(n)
            try:
                for _ in range(5):
                    trainer.step(pairs)
                return 5
            finally:
                torch.set_num_threads(all_threads)
        return go

    rates = alternate({f"{all_threads} threads (default)": steps_with(all_threads), "1 thread": steps_with(1)},
                      rounds, torch.device("cpu"))
    base = rates[f"{all_threads} threads (default)"]
    print("\n" + fmt_table(["fast-preset training", "steps/s", "vs default"],
                           [[k, f"{v:.2f}", f"{v / base:.2f}x"] for k, v in rates.items()]))


def demo_preset_section(device, rounds: int) -> None:
    # 6. The shipped demo preset beside the fast one, in the same run, alternating: training
    # steps/s and CPU seconds per step (process time, so load from other processes shows in
    # wall time only), then generation images/s at its 128 px with the noise input, b1 and b16.
    from generation.train import Trainer

    trainers, pairs, cpu = {}, {}, {}
    for name in ("fast", "demo"):
        cfg = preset(name, device=str(device))
        s = cfg.image_size
        pairs[name] = PairSet.from_tensors(torch.randint(0, 255, (64, 3, s, s), dtype=torch.uint8),
                                           torch.randint(0, 255, (64, 3, s, s), dtype=torch.uint8))
        trainers[name] = Trainer(cfg)
        cpu[name] = []

    def steps_of(name: str) -> Callable[[], int]:
        def go() -> int:
            c0 = time.process_time()
            for _ in range(3):
                trainers[name].step(pairs[name])
            cpu[name].append((time.process_time() - c0) / 3)
            return 3
        return go

    rates = alternate({name: steps_of(name) for name in trainers}, rounds, device)
    rows = []
    for name, sps in rates.items():
        cfg, per_step = trainers[name].cfg, statistics.median(cpu[name])
        rows.append([name, f"{cfg.image_size}", str(cfg.batch_size), f"{sps:.2f}", f"{per_step:.2f}",
                     f"{cfg.steps}", f"{cfg.steps * per_step / 60:.0f}"])
    print("\n" + fmt_table(["preset (training)", "px", "batch", "steps/s", "CPU s/step", "steps", "CPU-min for the run"], rows))

    gens = {name: trainers[name].G.eval() for name in trainers}

    def sample(name: str, batch: int) -> Callable[[], int]:
        g, s = gens[name], trainers[name].cfg.image_size
        x = torch.randn(batch, 3, s, s, device=device)
        if trainers[name].cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)

        def go() -> int:
            with torch.inference_mode():
                noise = g.draw_noise(batch, s, s, generator=torch.Generator().manual_seed(0), device=device) if g.noise_nc else None
                g(x, noise) if noise is not None else g(x)
            return batch
        return go

    rates = alternate({f"{n} b{b}": sample(n, b) for n in gens for b in (1, 16)}, rounds, device)
    print("\n" + fmt_table(["generation (inference_mode)", "img/s"], [[k, f"{v:.2f}"] for k, v in rates.items()]))


if __name__ == "__main__":
    main()
