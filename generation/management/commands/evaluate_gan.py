import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from generation.services import GanError, gan_ablation, gan_evaluate


class Command(BaseCommand):
    help = (
        "Score the active checkpoint (FD/KID vs held-out crops), run the Table 1 ablation, or, with --report, "
        "the GAN report on held-out layouts: GAN-test (a classifier trained on real images only, on real "
        "and generated images), skin tone in band, diversity, FD/KID beside real-vs-real (docs/dermgan.md). "
        "--report needs the condition classifier (train_condition_classifier, or prepare_demo)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--ablation", action="store_true", help="train and score the four variants + real reference")
        parser.add_argument("--steps", type=int, default=1500, help="training steps per ablation variant")
        parser.add_argument("--preset", choices=["fast", "paper"], default="fast")
        parser.add_argument("--trials", type=int, default=3, help="generation seeds per score (mean ± 1.96 std)")
        parser.add_argument("--inception-weights", default="", help="local Inception-V3 weights file (else own encoder)")
        parser.add_argument("--report", action="store_true", help="the GAN report (GAN-test, tone in band, diversity, FD)")
        parser.add_argument("--json", action="store_true", help="with --report: print one JSON object")
        parser.add_argument("--checkpoint", default="", help="with --report: checkpoint file (default: the active one)")
        parser.add_argument("--compare", default="", help="with --report: a second checkpoint measured in the same run")
        parser.add_argument("--layouts", type=int, default=0, help="with --report: at most this many held-out layouts, spread over conditions (default all)")
        parser.add_argument("--seeds", type=int, default=8, help="with --report: samples per map for diversity (default 8)")

    def handle(self, *args, ablation, steps, preset, trials, inception_weights, report, **options):
        try:
            if report:
                return self._report(options)
            if ablation:
                rows = gan_ablation(preset=preset, steps=steps, trials=trials, inception_weights=inception_weights)
            else:
                rows = [{"variant": "active checkpoint", **gan_evaluate(trials=trials, inception_weights=inception_weights)}]
        except GanError as exc:
            raise CommandError(str(exc)) from exc
        first = rows[0]
        self.stdout.write(f"extractor: {first['extractor']}; N = {first['n']} held-out crops; {first['trials']} trials")
        self.stdout.write(f"{'variant':42} {'FD (ours)':>18} {'KID (ours)':>20} {'patent FID':>14}")
        for row in rows:
            fd = f"{row['fd']:.2f} ± {row['fd_ci']:.2f}"
            kid = f"{row['kid']:.4f} ± {row['kid_ci']:.4f}"
            self.stdout.write(f"{row['variant']:42} {fd:>18} {kid:>20} {row.get('patent_fid', ''):>14}")

    def _report(self, options) -> None:
        from generation.quality import gan_report  # torch-heavy; only for --report

        if options["layouts"] < 0 or not 2 <= options["seeds"] <= 64:
            raise CommandError("--layouts must be >= 0 and --seeds 2-64")
        checkpoints = [Path(options["checkpoint"]) if options["checkpoint"] else None]
        if options["compare"]:
            checkpoints.append(Path(options["compare"]))
        progress = None if options["json"] else self.stdout.write
        rows = gan_report(checkpoints=checkpoints, max_layouts=options["layouts"] or None,
                          diversity_seeds=options["seeds"], progress=progress)
        if options["json"]:
            first = dict(rows[0])
            if len(rows) > 1:
                first["compare"] = rows[1]
            self.stdout.write(json.dumps(first, indent=1))
            return
        self._table(rows)

    def _table(self, rows: list[dict]) -> None:
        out = self.stdout.write
        first = rows[0]
        out(f"held-out layouts: {first['n_layouts']} (each generated at types I-VI); classifier {first['classifier']} "
            f"(real images only); extractor {first['extractor']}; tone calibration {first['calibration']}")
        width = 26
        out(f"{'':44}" + "".join(f"{row['checkpoint'][:width]:>{width + 2}}" for row in rows))
        lines = [
            ("image size", "image_size"), ("GAN-test real top-1", "gan_test_real_top1"),
            ("GAN-test synthetic top-1", "gan_test_synthetic_top1"), ("GAN-test synthetic top-3", "gan_test_synthetic_top3"),
            ("synthetic / real top-1", "gan_test_synthetic_over_real"), ("tone within one type, worst type", "tone_within_one_min"),
            ("diversity ratio (8 seeds vs real cell)", "diversity_ratio"), ("FD (own encoder)", "fd"),
            ("FD real vs real", "fd_real_vs_real"), ("KID", "kid"), ("KID real vs real", "kid_real_vs_real"),
            ("seconds", "seconds"),
        ]
        for label, key in lines:
            out(f"{label:44}" + "".join(f"{str(row[key]):>{width + 2}}" for row in rows))
        for skin_type in ("1", "2", "3", "4", "5", "6"):
            cells = "".join(f"{str(row['tone_within_one'].get(skin_type)):>{width + 2}}" for row in rows)
            out(f"{'  tone within one, requested type ' + skin_type:44}" + cells)
        for skin_type in ("1", "2", "3", "4", "5", "6"):
            cells = "".join(f"{str(row['gan_test_synthetic_top1_by_requested_type'].get(skin_type)):>{width + 2}}" for row in rows)
            out(f"{'  synthetic top-1, requested type ' + skin_type:44}" + cells)
        real = first["details"]["gan_test"]["real"]["per_condition"]
        out("per condition: real top-1 | synthetic top-1 of each checkpoint")
        for slug, row in real.items():
            synth = "".join(f"{row_['details']['gan_test']['synthetic']['per_condition'].get(slug, {}).get('top1', '-')!s:>10}" for row_ in rows)
            out(f"  {slug:38} n {row['n']:3} {row['top1']:>8}{synth}")
