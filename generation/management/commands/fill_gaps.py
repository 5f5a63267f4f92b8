"""Plan gap filling and start a job: `fill_gaps --target N [--conditions ...] [--skin-types ...] [--dry-run]`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from atlas.skin import roman
from generation.gaps import (
    GapError,
    GapPlan,
    GapPolicy,
    gap_plan,
    generation_job_create,
    generation_job_run,
    generation_jobs_recover,
    job_status,
)


def _words(values: list[str]) -> list[str]:
    # Accept "a b", "a,b" and "a, b".
    return [part for value in values for part in value.replace(",", " ").split()]


class Command(BaseCommand):
    help = "Fill (condition x skin type) cells up to a target with synthetic images: print the plan or start a job."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--target", type=int, help="at least this many public images per cell (real counted first)")
        parser.add_argument("--conditions", nargs="+", default=[], metavar="SLUG", help="condition slugs (default: all)")
        parser.add_argument("--skin-types", nargs="+", default=[], metavar="N", help="Fitzpatrick types 1-6 (default: all)")
        parser.add_argument("--max-synthetic-share", type=float, default=None,
                            help="optional cap on synthetic images / all images of a cell, 0-1")
        parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
        parser.add_argument("--seed", type=int, default=None, help="job seed (default: random)")
        parser.add_argument("--no-vary-size", action="store_true", help="keep the real lesion box sizes")
        parser.add_argument("--wait", action="store_true",
                            help="run the job in this process instead of queueing it for a worker")
        parser.add_argument("--resume", action="store_true",
                            help="re-enqueue active jobs whose worker died or whose lease expired, then exit")

    def handle(self, *args, **options) -> None:
        if options["resume"]:
            ids = generation_jobs_recover()
            self.stdout.write(f"re-enqueued {len(ids)} job(s): {', '.join(map(str, ids)) or '-'}")
            return
        if options["target"] is None:
            raise CommandError("--target is required (e.g. --target 10)")
        try:
            skin_types = tuple(int(s) for s in _words(options["skin_types"])) or (1, 2, 3, 4, 5, 6)
        except ValueError:
            raise CommandError(f"skin types are numbers 1-6, got {' '.join(options['skin_types'])}") from None
        policy = GapPolicy(target=options["target"], conditions=tuple(_words(options["conditions"])),
                           skin_types=skin_types, max_synthetic_share=options["max_synthetic_share"])
        try:
            if options["dry_run"]:
                self._print_plan(gap_plan(policy=policy))
                self.stdout.write("dry run: nothing was changed")
                return
            job = generation_job_create(policy=policy, seed=options["seed"], vary_size=not options["no_vary_size"],
                                        enqueue=not options["wait"])
        except GapError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"job {job.pk}: {job.planned_total} image(s) in {len(job.plan)} cell(s)")
        if options["wait"]:
            while (report := generation_job_run(job_id=job.pk)).outcome == "continue":
                job.refresh_from_db()
                self.stdout.write(f"  {job.stored_total} of {job.planned_total} stored")
            job.refresh_from_db()
            self.stdout.write(f"job {job.pk} {job.status}: {job.stored_total} of {job.planned_total} stored"
                              + (f" ({job.error})" if job.error else ""))
            self._print_cells(job)
            if job.status == job.Status.FAILED:
                raise CommandError(job.error)
        else:
            self.stdout.write(f"queued on the 'generation' queue; watch it at /generation/fill-gaps/jobs/{job.pk}/")

    def _print_cells(self, job) -> None:
        """Per cell: stored of planned, samples drawn, passing every gate, failing each gate."""
        cells = job_status(job)["cells"]
        width = max([len("condition"), *(len(c["condition"]) for c in cells)])
        self.stdout.write(f"{'condition':<{width}} {'type':<4} {'stored':>6} {'drawn':>6} {'passed':>6}  failed by gate")
        for c in cells:
            failed = ", ".join(f"{gate} {n}" for gate, n in c["failed"].items()) or "-"
            self.stdout.write(f"{c['condition']:<{width}} {roman(c['skin_type']):<4} {c['stored']:>3}/{c['planned']:<2} "
                              f"{c['drawn']:>6} {c['passed']:>6}  {failed}" + (f"  ({c['note']})" if c["note"] else ""))

    def _print_plan(self, plan: GapPlan) -> None:
        policy = plan.policy
        cap = f", synthetic share <= {policy.max_synthetic_share:g}" if policy.max_synthetic_share is not None else ""
        self.stdout.write(f"plan: target {policy.target} per cell{cap}; model {plan.checkpoint or 'none (train one first)'}")
        width = max([len("condition"), *(len(c.condition.slug) for c in plan.cells + plan.skipped)])
        self.stdout.write(f"{'condition':<{width}} {'type':<4} {'real':>5} {'syn':>5} {'generate':>8}  note")
        for cell in plan.cells:
            self.stdout.write(f"{cell.condition.slug:<{width}} {roman(cell.skin_type):<4} {cell.real:>5} "
                              f"{cell.synthetic:>5} {cell.count:>8}  {cell.note}")
        for cell in plan.skipped:
            self.stdout.write(f"{cell.condition.slug:<{width}} {roman(cell.skin_type):<4} {cell.real:>5} "
                              f"{cell.synthetic:>5} {0:>8}  skipped: {cell.note}")
        self.stdout.write(f"total: {plan.total} image(s) in {len(plan.cells)} cell(s)")
