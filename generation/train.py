"""Train DermGAN on (crop, semantic map) pairs. Django-free, nanoGPT-style.

    cfg = preset("fast", steps=2000)
    result = train(cfg, pairs=PairSet(manifest, split="train", size=cfg.image_size),
                   vocabulary=manifest.vocabulary, data_fingerprint=manifest.fingerprint,
                   out_dir=Path("var/gan/runs/x"))

Every `checkpoint_every` steps two files are written atomically: `step_NNNNNNN.pt`, a
self-describing generator checkpoint (model arguments, vocabularies, config, data
fingerprint, step, code version) for sampling, and `resume.pt`, the full training state
(both networks, both optimizers, every RNG, the loss history) for `resume=True`, which
continues bit-for-bit where the run stopped.
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from generation.dataset import PairSet, to_float, to_uint8
from generation.losses import GANLoss, LossWeights, discriminator_loss, generator_losses
from generation.networks import ConditionNet, define_D, define_G, init_net
from generation.semantic_map import code_index, grid_step

CHECKPOINT_FORMAT = "dermgan-checkpoint/1"
SKIN_TYPES = (1, 2, 3, 4, 5, 6)
# Settings a resumed run may change; any other change refuses to resume.
RESUME_MAY_CHANGE = ("steps", "checkpoint_every", "sample_every", "log_every", "threads", "device")


@dataclass
class TrainConfig:
    preset: str = "fast"  # name of the preset these values started from
    image_size: int = 64  # crops are resized to this square side before training
    crop_window: int = 0  # ROI window (source pixels) the training crops were cut with; 0 = not recorded
    num_downs: int = 6  # U-Net halvings; image_size / 2**num_downs is the bottleneck side (1 at the paper's 8 for 256)
    ngf: int = 32  # generator width of the first layer (pix2pix: 64)
    ndf: int = 32  # discriminator width of the first layer (pix2pix: 64)
    max_mult: int = 8  # generator width cap = ngf * max_mult (pix2pix: 8)
    n_layers_d: int = 3  # PatchGAN depth (pix2pix: 3, a 70x70 receptive field)
    norm: str = "batch"  # batch | instance | none
    upsample: str = "resize"  # resize (nearest 2x + conv3, checkerboard fix) | transposed (ablation) | subpixel (2x2 conv + pixel shuffle, ICNR)
    use_dropout: bool = True  # dropout 0.5 in the three innermost up-blocks, as in pix2pix
    noise_channels: int = 0  # per-pixel Gaussian noise planes added to G's input (0 = deterministic, the patent's)
    latent_dim: int = 0  # a Gaussian latent broadcast over the map as extra input planes (0 = none)
    inject_noise: bool = False  # the noise plane goes into every decoder level (learned scales, zero at start), not the input
    noise_levels: int = 0  # with inject_noise: only the finest N decoder levels get it (0 = every level)
    pad: str = "zeros"  # zeros (pix2pix) | reflect: no zero borders for G to turn into frame lines
    num_d: int = 1  # PatchGAN scales: 1 = pix2pix, 2 = pix2pixHD's full + half resolution
    batch_size: int = 16
    steps: int = 3000  # optimisation steps (one G and one D update each)
    lr: float = 2e-4
    lr_d: float = 0.0  # the discriminator's learning rate when it differs from G's (0 = lr)
    beta1: float = 0.5
    beta2: float = 0.999
    decay_start: float = 0.5  # fraction of `steps` after which the learning rate decays linearly to 0
    lambda_l1: float = 100.0  # L1 over the whole image
    lambda_roi: float = 100.0  # L1 inside the ROI (0 = "no condition-specific loss" ablation)
    lambda_fm: float = 10.0  # feature matching at D's second-to-last layer (0 = ablation)
    lambda_gan: float = 1.0  # adversarial term
    lambda_ms: float = 0.0  # mode-seeking diversity term (needs a noise input; 0 = off)
    lambda_cls: float = 0.0  # auxiliary condition classifier on G's output, trained on real crops only (0 = off)
    cls_start: int = 0  # steps in which the classifier learns from real crops before G's term applies
    cls_blur: float = 0.0  # Gaussian sigma (pixels) of the blur on everything the classifier sees (0 = none)
    init_from: str = ""  # a generator checkpoint whose weights G starts from (fine-tuning; same model arguments)
    fm_layers: str = "last"  # feature matching at D's second-to-last layer (the patent's) | all (pix2pixHD)
    norm_d: str = ""  # D's normalisation when it differs from G's ("spectral": SN, no activation norm); "" = norm
    gan_mode: str = "vanilla"  # vanilla (BCE with logits) | lsgan
    flip: bool = True  # random horizontal flips of image and map together
    rotate: bool = False  # also vertical flips and 90-degree turns (skin photographs have no "up")
    seed: int = 0
    device: str = "auto"  # auto (cuda when present) | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU, where it is slower here)
    channels_last: bool = False  # NHWC memory layout (see docs/benchmarks.md for when it pays)
    threads: int = 0  # torch CPU threads, 0 = leave torch's default
    checkpoint_every: int = 500
    sample_every: int = 500  # sample grid + loss curve PNGs
    log_every: int = 10  # loss history resolution and progress-bar refresh

    def loss_weights(self) -> LossWeights:
        return LossWeights(l1=self.lambda_l1, roi=self.lambda_roi, feature_matching=self.lambda_fm, gan=self.lambda_gan,
                           mode_seeking=self.lambda_ms, classifier=self.lambda_cls)

    @property
    def noisy(self) -> bool:
        return bool(self.noise_channels or self.latent_dim)

    def generator_args(self) -> dict:
        args = {"input_nc": 3, "output_nc": 3, "num_downs": self.num_downs, "ngf": self.ngf, "norm": self.norm,
                "use_dropout": self.use_dropout, "upsample": self.upsample, "max_mult": self.max_mult}
        # Only non-default extras are written, so older checkpoints and the patent's setup
        # describe themselves exactly as before.
        if self.noisy:
            args |= {"noise_channels": self.noise_channels, "latent_dim": self.latent_dim}
        if self.inject_noise:
            args["inject_noise"] = True
        if self.noise_levels:
            args["noise_levels"] = self.noise_levels
        if self.pad != "zeros":
            args["pad"] = self.pad
        return args

    def discriminator_name(self) -> str:
        return "multiscale" if self.num_d > 1 else "patch"

    def discriminator_args(self) -> dict:
        args = {"input_nc": 6, "ndf": self.ndf, "n_layers": self.n_layers_d, "norm": self.norm_d or self.norm}
        return args | {"num_d": self.num_d} if self.num_d > 1 else args


PRESETS: dict[str, TrainConfig] = {
    # pix2pix at 256x256 as the patent used it; meant for a GPU (about 1 step/s on 2 CPU cores).
    "paper": TrainConfig(preset="paper", image_size=256, num_downs=8, ngf=64, ndf=64, batch_size=1,
                         steps=200_000, checkpoint_every=5000, sample_every=5000, log_every=50),
    # Small enough for two busy CPU cores: 64x64, widths capped at 128, NHWC (about 2x faster
    # on CPU here); 2500 steps take about 15 minutes (measured in docs/benchmarks.md).
    "fast": TrainConfig(preset="fast", image_size=64, num_downs=6, ngf=32, ndf=32, max_mult=4, batch_size=16,
                        channels_last=True, steps=2500),
    # The shipped demo model (docs/dermgan.md, "The demo preset", says why each value): 128x128
    # crops of a 128-pixel window (no resampling), noise input with mode seeking for variety,
    # reflection padding against frame lines, a two-scale PatchGAN with LSGAN, and L1 weights
    # low enough that the adversarial and feature-matching terms, not the mean, shape texture.
    # No per-pixel noise planes: with them, mode seeking taught G to copy the noise into the
    # image as speckle (run demo-v1, docs/dermgan.md); the broadcast latent varies the lesion.
    # A spectrally normalised D with feature matching over all its layers (runs demo-v4 to v6)
    # let mode seeking vary the background (black vignettes, glare) instead of the lesion; the
    # BatchNorm PatchGAN with the patent's one FM layer stayed stable (demo-v3), so that is
    # kept, with mode seeking lowered to 0.2 and skin-preferring crop windows (GAN_WINDOW_TRIES).
    # Run demo-v8 tried a texture noise plane injected into every decoder level
    # (`inject_noise`) and half D's learning rate (`lr_d` 1e-4): no more stripes and a better
    # GAN-test (0.34 of real against 0.28), but a mottled red "camouflage" over healthy skin,
    # green casts on types V-VI and type II's tone in band at 0.899; not shipped, so the
    # preset stays v7's (docs/dermgan.md, "demo-v8"). Run demo-v9 kept that noise to the two
    # finest levels (`noise_levels=2`): GAN-test 0.41 of real, but blue-violet casts on V-VI
    # and tone in band under 0.9 on types I and III; not shipped either ("demo-v9").
    # Run demo-v10 fine-tuned v7 with an auxiliary condition classifier (`lambda_cls`, trained
    # on real crops only): GAN-test 0.38 of real, but blurrier, paler images and an FD three
    # times v7's, from the fine-tuning with a fresh D (a control without the term was worse);
    # not shipped ("demo-v10"). Run demo-v11 trained v7's recipe with that term from scratch:
    # GAN-test 0.74 of real (the target), but by painting what classifiers read (box frames,
    # checker texture, a red-blue quilt for psoriasis) with FD 27 against v7's 17 and less
    # variety; not shipped ("demo-v11").
    # Run demo-v12 used the term at 0.3 from step 4,000 on blurred images (`cls_blur` 2):
    # GAN-test 0.51 of real at v7's FD, but no more recognisable and type I's tone in band
    # 0.89; not shipped ("demo-v12").
    "demo": TrainConfig(preset="demo", image_size=128, num_downs=7, ngf=32, ndf=32, max_mult=4, batch_size=8,
                        use_dropout=False, noise_channels=0, latent_dim=8, pad="reflect", num_d=2,
                        gan_mode="lsgan", lambda_l1=5.0, lambda_roi=10.0, lambda_fm=10.0, lambda_ms=0.2,
                        rotate=True, channels_last=True, steps=10000, decay_start=0.5,
                        checkpoint_every=250, sample_every=250),
}


def preset(name: str, **overrides) -> TrainConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose from {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


@dataclass
class TrainResult:
    step: int
    checkpoints: list[Path] = field(default_factory=list)  # step_*.pt written in this call
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


def code_version() -> str:
    """The git commit of this code (with "-dirty" when generation/ has local edits), else "unknown"."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if rev.returncode != 0:
        return "unknown"
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but CUDA is not available here")
    return device


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """1 until decay_start * steps, then linear to 0 at `steps` (pix2pix's 'linear' policy)."""
    start = int(cfg.decay_start * cfg.steps)
    if step < start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / max(1, cfg.steps - start))


def _save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _batch(pairs: PairSet, cfg: TrainConfig, gen: torch.Generator, device: torch.device):
    """A batch of (real, map). With mode seeking on, the second half repeats the first half's
    pairs (the trainer gives them other noise)."""
    drawn = cfg.batch_size // 2 if cfg.lambda_ms and cfg.noisy else cfg.batch_size
    idx = torch.randint(len(pairs), (drawn,), generator=gen)
    flip = torch.rand(drawn, generator=gen) < 0.5 if cfg.flip else torch.zeros(drawn, dtype=torch.bool)
    real, sem = pairs.images[idx], pairs.maps[idx]
    real[flip], sem[flip] = real[flip].flip(-1), sem[flip].flip(-1)
    if cfg.rotate:
        vflip = torch.rand(drawn, generator=gen) < 0.5
        real[vflip], sem[vflip] = real[vflip].flip(-2), sem[vflip].flip(-2)
        turn = torch.rand(drawn, generator=gen) < 0.5
        real[turn], sem[turn] = real[turn].transpose(-1, -2), sem[turn].transpose(-1, -2)
    if drawn != cfg.batch_size:
        real, sem = real.repeat(2, 1, 1, 1), sem.repeat(2, 1, 1, 1)
    memory = torch.channels_last if cfg.channels_last else torch.contiguous_format
    return (to_float(real).to(device, memory_format=memory), to_float(sem).to(device, memory_format=memory))


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """A Gaussian blur of `sigma` pixels (reflected borders), differentiable; sigma 0 is the identity."""
    if sigma <= 0:
        return images
    if sigma > min(images.shape[-2:]) / 6:
        raise ValueError(f"a blur of sigma {sigma} is too wide for {tuple(images.shape[-2:])} images")
    radius = math.ceil(3 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=images.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(images.dtype)
    c = images.shape[1]
    out = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def map_labels(sem: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """The vocabulary index of each map's condition (float maps in [-1, 1]): its (G, B) code,
    read as the channel maxima since a map holds one condition and zero outside its boxes."""
    code = ((sem[:, 1:3].float() + 1) * 127.5).round().amax(dim=(2, 3)).long()
    if (code < grid_step(vocab_size)).any():
        raise ValueError("a map without a condition box cannot be labelled")
    return code_index(code[:, 0], code[:, 1], vocab_size).clamp(0, vocab_size - 1)


def _fp32(x):
    """float32 of a tensor, or of each tensor of a multi-scale or all-layer D's (nested) list."""
    return [_fp32(t) for t in x] if isinstance(x, list) else x.float()


class Trainer:
    """Holds the networks, optimizers and RNGs of one run; `step()` is one G and one D update."""

    def __init__(self, cfg: TrainConfig, *, device: torch.device | None = None, num_classes: int = 0) -> None:
        self.cfg = cfg
        self.device = device or pick_device(cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.G = define_G("unet", **cfg.generator_args()).to(self.device)
        self.init_vocabulary: list[str] = []
        if cfg.init_from:
            self._init_generator(Path(cfg.init_from))
        self.D = define_D(cfg.discriminator_name(), **cfg.discriminator_args()).to(self.device)
        if cfg.channels_last:
            self.G, self.D = self.G.to(memory_format=torch.channels_last), self.D.to(memory_format=torch.channels_last)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=betas)
        self.C, self.opt_C, self.num_classes = None, None, num_classes
        if cfg.lambda_cls:
            if num_classes < 2:
                raise ValueError("lambda_cls needs the vocabulary's size (num_classes >= 2)")
            self.C = init_net(ConditionNet(num_classes), self.device)
            self.opt_C = torch.optim.Adam(self.C.parameters(), lr=cfg.lr, betas=betas)
        self.gan_loss = GANLoss(cfg.gan_mode)
        self.weights = cfg.loss_weights()
        self.autocast = self.device.type == "cuda" and cfg.amp
        self.step_no = 0
        self.history: dict[str, list[float]] = {"step": [], "l1": [], "roi": [], "fm": [], "gan": [], "ms": [], "d": [], "cls": [], "c": []}

    def _init_generator(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            args, weights = state["generator"]["args"], state["generator"]["state"]
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged or foreign file
            raise ValueError(f"init_from: {path} is not a readable generator checkpoint: {exc}") from exc
        if args != self.cfg.generator_args():
            raise ValueError(f"init_from: {path.name} has other model arguments ({args}) than this run ({self.cfg.generator_args()})")
        self.G.load_state_dict({k: v.float() for k, v in weights.items()})
        self.init_vocabulary = list(state.get("vocabulary", []))

    def _set_lr(self) -> None:
        factor = lr_factor(self.step_no, self.cfg)
        for opt, lr in ((self.opt_G, self.cfg.lr), (self.opt_D, self.cfg.lr_d or self.cfg.lr), (self.opt_C, self.cfg.lr)):
            for group in (opt.param_groups if opt else ()):
                group["lr"] = lr * factor

    def step(self, pairs: PairSet) -> dict[str, float]:
        self.G.train(), self.D.train()
        self._set_lr()
        real, sem = _batch(pairs, self.cfg, self.data_gen, self.device)
        noise = None
        if self.cfg.noisy:
            b, _, h, w = sem.shape
            noise = self.G.draw_noise(b, h, w, generator=self.data_gen, device=self.device)
            if self.cfg.inject_noise and self.cfg.lambda_ms and b > 1:
                # A mode-seeking pair shares its texture noise: only the latent differs, so the
                # term asks the latent (lesion shape, colour) to matter, not copied pixel noise.
                half, planes = b // 2, self.cfg.noise_channels
                noise[half:2 * half, :planes] = noise[:half, :planes]
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            fake = self.G(sem, noise) if noise is not None else self.G(sem)
            # One D pass per input, shared by both losses (as pix2pixHD does): D(real) gives
            # the real logits and the feature-matching targets.
            every = self.cfg.fm_layers == "all"
            real_logits, real_feats = self.D(torch.cat([sem, real], 1), features=True, all_layers=every)
            fake_logits, fake_feats = self.D(torch.cat([sem, fake], 1), features=True, all_layers=every)
            fake_logits_d = self.D(torch.cat([sem, fake.detach()], 1))
            if self.C is not None:
                labels = map_labels(sem, self.num_classes)
                fake_classes, real_classes = self.C(self._classifier_view(fake)), self.C(self._classifier_view(real))
        terms = generator_losses(
            fake=fake.float(), real=real, semantic_map=sem, fake_logits=_fp32(fake_logits),
            fake_features=_fp32(fake_feats), real_features=_fp32(real_feats),
            weights=self.weights, gan_loss=self.gan_loss, noise=noise,
            class_logits=fake_classes.float() if self.C is not None and self.step_no >= self.cfg.cls_start else None,
            labels=labels if self.C is not None else None,
        )
        loss_d = discriminator_loss(_fp32(real_logits), _fp32(fake_logits_d), self.gan_loss)
        self.opt_G.zero_grad(set_to_none=True)
        terms["total"].backward(inputs=list(self.G.parameters()))
        self.opt_G.step()
        self.opt_D.zero_grad(set_to_none=True)
        loss_d.backward(inputs=list(self.D.parameters()))
        self.opt_D.step()
        out = {k: float(v.detach()) for k, v in terms.items()}
        if self.C is not None:  # the classifier learns from real crops only
            loss_c = torch.nn.functional.cross_entropy(real_classes.float(), labels)
            self.opt_C.zero_grad(set_to_none=True)
            loss_c.backward(inputs=list(self.C.parameters()))
            self.opt_C.step()
            out["c"] = float(loss_c.detach())
        self.step_no += 1
        out["d"] = float(loss_d.detach())
        return out

    def _classifier_view(self, images: torch.Tensor) -> torch.Tensor:
        # Blurred, the classifier cannot read one-pixel frames or periodic texture, cues G
        # learned to paint for it when it saw sharp crops (run demo-v11, docs/dermgan.md).
        return blur(images, self.cfg.cls_blur)

    # --- checkpoints ---------------------------------------------------------------------
    def describe(self, *, vocabulary: list[str], data_fingerprint: str) -> dict:
        """What any checkpoint of this run carries: enough to rebuild and label the generator."""
        return {
            "format": CHECKPOINT_FORMAT,
            "generator": {"name": "unet", "args": self.cfg.generator_args()},
            "discriminator": {"name": self.cfg.discriminator_name(), "args": self.cfg.discriminator_args()},
            "vocabulary": list(vocabulary),
            "skin_types": list(SKIN_TYPES),
            "image_size": self.cfg.image_size,
            "config": asdict(self.cfg),
            "data_fingerprint": data_fingerprint,
            "step": self.step_no,
            "code_version": code_version(),
        }

    def save(self, out_dir: Path, *, vocabulary: list[str], data_fingerprint: str) -> Path:
        meta = self.describe(vocabulary=vocabulary, data_fingerprint=data_fingerprint)
        step_path = out_dir / f"step_{self.step_no:07d}.pt"
        _save_atomic({**meta, "generator": {**meta["generator"], "state": self.G.state_dict()}}, step_path)
        rng = {"torch": torch.get_rng_state(), "data": self.data_gen.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        full = {
            **meta,
            "generator": {**meta["generator"], "state": self.G.state_dict()},
            "discriminator": {**meta["discriminator"], "state": self.D.state_dict()},
            "optimizers": {"G": self.opt_G.state_dict(), "D": self.opt_D.state_dict()}
            | ({"C": self.opt_C.state_dict()} if self.C is not None else {}),
            "rng": rng,
            "history": self.history,
        }
        if self.C is not None:
            full["classifier"] = {"num_classes": self.num_classes, "state": self.C.state_dict()}
        _save_atomic(full, out_dir / "resume.pt")
        return step_path

    def restore(self, state: dict) -> None:
        if state.get("format") != CHECKPOINT_FORMAT or "optimizers" not in state:
            raise ValueError("not a resumable DermGAN training state")
        saved = {k: v for k, v in state["config"].items() if k not in RESUME_MAY_CHANGE}
        mine = {k: v for k, v in asdict(self.cfg).items() if k in saved}
        if saved != mine:
            changed = sorted(k for k in saved if saved[k] != mine.get(k))
            raise ValueError(f"cannot resume: the run was started with other settings ({', '.join(changed)})")
        self.G.load_state_dict(state["generator"]["state"])
        self.D.load_state_dict(state["discriminator"]["state"])
        self.opt_G.load_state_dict(state["optimizers"]["G"])
        self.opt_D.load_state_dict(state["optimizers"]["D"])
        if self.C is not None:
            self.C.load_state_dict(state["classifier"]["state"])
            self.opt_C.load_state_dict(state["optimizers"]["C"])
        torch.set_rng_state(state["rng"]["torch"])
        self.data_gen.set_state(state["rng"]["data"])
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.step_no = state["step"]
        self.history = state["history"]
        for key in ("ms", "cls", "c"):
            self.history.setdefault(key, [0.0] * len(self.history["step"]))


def train(
    cfg: TrainConfig,
    *,
    pairs: PairSet,
    vocabulary: list[str],
    data_fingerprint: str,
    out_dir: Path,
    resume: bool = False,
    preview: PairSet | None = None,
    progress: bool = True,
    on_checkpoint: Callable[[Path, dict], None] | None = None,
) -> TrainResult:
    """Train until `cfg.steps`, writing checkpoints, sample grids and loss curves into out_dir.

    `preview` pairs (default: the first 8 training pairs) are drawn in every sample grid.
    `on_checkpoint(path, metrics)` is called after each step checkpoint is on disk.
    """
    if len(pairs) == 0:
        raise ValueError("no training pairs")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(cfg, num_classes=len(vocabulary))
    if cfg.init_from and trainer.init_vocabulary != list(vocabulary):
        raise ValueError(f"init_from: {Path(cfg.init_from).name} was trained on another condition vocabulary")
    if resume:
        resume_path = out_dir / "resume.pt"
        if not resume_path.exists():
            raise ValueError(f"nothing to resume: {resume_path} does not exist")
        state = torch.load(resume_path, map_location=trainer.device, weights_only=True)
        if state["data_fingerprint"] != data_fingerprint:
            raise ValueError("cannot resume: the training set changed since this run started (fingerprint differs)")
        trainer.restore(state)
    preview = preview if preview is not None and len(preview) else pairs
    result = TrainResult(step=trainer.step_no)
    started = time.perf_counter()
    bar = tqdm(total=cfg.steps, initial=trainer.step_no, disable=not progress, desc=f"dermgan {cfg.preset}", unit="step")
    running: dict[str, float] = {}
    while trainer.step_no < cfg.steps:
        terms = trainer.step(pairs)
        for key in ("l1", "roi", "fm", "gan", "ms", "d", "cls", "c"):
            running[key] = running.get(key, 0.0) + terms.get(key, 0.0)
        bar.update(1)
        if trainer.step_no % cfg.log_every == 0 or trainer.step_no == cfg.steps:
            count = (trainer.step_no - 1) % cfg.log_every + 1
            trainer.history["step"].append(trainer.step_no)
            for key, total in running.items():
                trainer.history[key].append(total / count)
            bar.set_postfix({k: f"{v / count:.3g}" for k, v in running.items()})
            running = {}
        at_end = trainer.step_no == cfg.steps
        if trainer.step_no % cfg.sample_every == 0 or at_end:
            save_sample_grid(trainer.G, preview, out_dir / f"samples_{trainer.step_no:07d}.png", trainer.device)
            save_loss_curves(trainer.history, out_dir / "losses.png")
        if trainer.step_no % cfg.checkpoint_every == 0 or at_end:
            path = trainer.save(out_dir, vocabulary=vocabulary, data_fingerprint=data_fingerprint)
            result.checkpoints.append(path)
            if on_checkpoint:
                on_checkpoint(path, latest_losses(trainer.history))
    bar.close()
    result.step, result.history = trainer.step_no, trainer.history
    result.seconds = time.perf_counter() - started
    return result


def _batchnorms(G: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batchnorm(G: torch.nn.Module, pairs: PairSet, cfg: TrainConfig, *, batches: int = 100, seed: int = 0) -> int:
    """Replace G's BatchNorm running statistics by their average over `batches` training batches
    ("precise BN"). During training they are an exponential average of the last few batches of a
    moving network; at batch 8 that is noisy enough to tint eval-mode images. Returns the
    number of BatchNorm layers recalibrated (0: nothing to do)."""
    norms = _batchnorms(G)
    if not norms:
        return 0
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    was_training = G.training
    G.train()
    gen = torch.Generator().manual_seed(seed)
    device = next(G.parameters()).device
    try:
        for _ in range(batches):
            real, sem = _batch(pairs, cfg, gen, device)
            if getattr(G, "noise_nc", 0):
                b, _, h, w = sem.shape
                G(sem, G.draw_noise(b, h, w, generator=gen, device=device))
            else:
                G(sem)
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
        G.train(was_training)
    return len(norms)


def latest_losses(history: dict[str, list[float]]) -> dict:
    return {k: round(v[-1], 5) for k, v in history.items() if v and k != "step"} | {
        "step": history["step"][-1] if history["step"] else 0
    }


@torch.no_grad()
def save_sample_grid(G: torch.nn.Module, pairs: PairSet, path: Path, device: torch.device, count: int = 8) -> None:
    """Rows of [map | generated | real] for the first `count` pairs (dropout off).

    BatchNorm normalises with the preview batch's own statistics, as in training, and its
    running statistics are left as they were: during a run they are an average of a moving
    network's last batches, and eval-mode grids drawn with them showed tints and washed-out
    images that neither training nor the exported (recalibrated) model had."""
    from torchvision.utils import save_image

    was_training = G.training
    G.eval()
    norms = _batchnorms(G)
    kept = [(m.momentum, {k: v.clone() for k, v in m.named_buffers()}) for m in norms]
    for m in norms:
        m.train()
        m.momentum = 0.0  # running = (1 - 0) * running: batch statistics without updating them
    try:
        sem, real = pairs.maps[:count], pairs.images[:count]
        inputs = to_float(sem).to(device)
        if getattr(G, "noise_nc", 0):  # a fixed draw, so grids of successive steps compare
            noise = G.draw_noise(len(sem), sem.shape[2], sem.shape[3], generator=torch.Generator().manual_seed(0), device=device)
            fake = to_uint8(G(inputs, noise).cpu())
        else:
            fake = to_uint8(G(inputs).cpu())
    finally:
        for m, (momentum, buffers) in zip(norms, kept):
            m.momentum = momentum
            for name, value in buffers.items():
                getattr(m, name).copy_(value)
        G.train(was_training)
    rows = torch.stack([sem, fake, real], 1).flatten(0, 1).float() / 255
    save_image(rows, path, nrow=3, padding=2)


def save_loss_curves(history: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for key in ("l1", "roi", "fm"):
        axes[0].plot(history["step"], history[key], label=key)
    for key in ("gan", "ms", "d", "cls", "c"):
        if key in history:
            axes[1].plot(history["step"], history[key], label=key)
    for ax, title in zip(axes, ("reconstruction terms (weighted)", "adversarial")):
        ax.set_title(title), ax.set_xlabel("step"), ax.legend()
        if ax is axes[0] and any(v > 0 for k in ("l1", "roi", "fm") for v in history[k]):
            ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def steps_per_second(cfg: TrainConfig, pairs: PairSet, *, steps: int = 5, warmup: int = 2, num_classes: int = 0) -> float:
    """Training throughput of `cfg` on `pairs` (for benches)."""
    trainer = Trainer(cfg, num_classes=num_classes)
    for _ in range(warmup):
        trainer.step(pairs)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.step(pairs)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - t0)

