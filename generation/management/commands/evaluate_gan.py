from django.core.management.base import BaseCommand, CommandError

from generation.services import GanError, gan_ablation, gan_evaluate


class Command(BaseCommand):
    help = "Score the active checkpoint (FD/KID vs held-out crops), or run the Table 1 ablation."

    def add_arguments(self, parser):
        parser.add_argument("--ablation", action="store_true", help="train and score the four variants + real reference")
        parser.add_argument("--steps", type=int, default=1500, help="training steps per ablation variant")
        parser.add_argument("--preset", choices=["fast", "paper"], default="fast")
        parser.add_argument("--trials", type=int, default=3, help="generation seeds per score (mean ± 1.96 std)")
        parser.add_argument("--inception-weights", default="", help="local Inception-V3 weights file (else own encoder)")

    def handle(self, *args, ablation, steps, preset, trials, inception_weights, **options):
        try:
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
