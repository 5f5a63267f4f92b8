"""Report the C2PA content credentials of image files and whether they verify."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from atlas.services.credentials import CredentialReport, CredentialsError, credentials_verify

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


class Command(BaseCommand):
    help = (
        "Read each file's C2PA manifest: who signed it, what it says (digital source type, model, "
        "checkpoint, review state) and whether it verifies. Exit status 1 when any file does not verify."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument("--json", action="store_true", help="One JSON object per file, on one line each.")

    def handle(self, *args, **options) -> None:
        failed = 0
        for name in options["files"]:
            path = Path(name)
            try:
                data = path.read_bytes()
            except OSError as exc:
                failed += 1
                self.stderr.write(f"{name}: cannot be read ({exc.strerror or exc})")
                continue
            try:
                report = credentials_verify(data=data, mime_type=_MIME.get(path.suffix.lower(), "image/png"))
            except CredentialsError as exc:
                raise CommandError(str(exc)) from None
            failed += not report.verified
            self.stdout.write(_json(name, report) if options["json"] else _text(name, report))
        if failed:
            raise CommandError(f"{failed} of {len(options['files'])} file(s) do not verify")


def _json(name: str, report: CredentialReport) -> str:
    return json.dumps({"file": name, "verified": report.verified, **asdict(report)}, sort_keys=True)


def _text(name: str, report: CredentialReport) -> str:
    if not report.has_manifest:
        why = f" ({report.error})" if report.error else ""
        return f"{name}: NOT VERIFIED - no content credentials{why}"
    verdict = "verified" if report.verified else "NOT VERIFIED"
    lines = [
        f"{name}: {verdict} ({report.state}; {report.trust_note})",
        f"  signed by: {report.signer} [{report.alg}]",
        f"  manifests: {report.manifest_count} (the active one is titled {report.title!r})",
        f"  digital source type: {', '.join(report.digital_source_types) or 'not stated'}",
    ]
    generation = report.generation
    if generation:
        lines.append(
            f"  model: {generation.get('model', '?')}, checkpoint {generation.get('checkpoint', '?')}"
            + (f", trained on: {generation['trained_on']}" if generation.get("trained_on") else "")
        )
    if report.review_state:
        lines.append(f"  review state when signed: {report.review_state}")
    lines.extend(f"  failure: {failure}" for failure in report.failures)
    return "\n".join(lines)
