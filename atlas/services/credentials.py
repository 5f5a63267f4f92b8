"""Content credentials bound to settings: sign synthetic files at ingestion and on export, verify files.

The key and certificate chain come from ATLAS_C2PA_KEY_FILE / ATLAS_C2PA_CERT_FILE. Local mode
(ATLAS_C2PA_DEMO_KEYS on, the default outside production) signs with the demo pair under
var/c2pa/, created on first use or by `prepare_demo` and renewed when it is about to expire.
Production refuses to start without a valid, non-demo pair (atlas/settings/production.py).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import io
import threading
from functools import lru_cache
from pathlib import Path, PurePosixPath

from django.conf import settings
from PIL import Image as PILImage

from atlas.content_credentials import (
    CredentialReport,
    CredentialsError,
    PngSigner,
    SyntheticClaim,
    checkpoint_name,
    credentials_read,
    demo_pair_paths,
    demo_pair_write,
    manifest_definition,
    signing_pair_load,
    update_definition,
)
from atlas.models import Image

_DEMO_RENEW_BEFORE = dt.timedelta(days=30)
_demo_lock = threading.Lock()

__all__ = [
    "CredentialReport", "CredentialsError", "credentials_sign_export", "credentials_sign_generated",
    "credentials_verify", "demo_credentials_ensure",
]  # fmt: skip


def credentials_sign_generated(*, data: bytes, provenance: dict, title: str, review_state: str) -> bytes:
    """A freshly generated PNG with its manifest: trained algorithmic media, model, checkpoint, review state
    (Image.ReviewState: "pending" until a reviewer decides, "not_required" where review is off)."""
    return _signer().sign(data, manifest_definition(_claim(provenance, title=title, review_state=review_state)))


def credentials_sign_export(*, data: bytes, image: Image) -> bytes:
    """The stored file of a synthetic image, with a manifest stating its review state now.

    The manifest added at ingestion stays inside as the parent; a file stored before content
    credentials existed gets a complete manifest instead.
    """
    claim = _claim(image.provenance, title=_title(image), review_state=image.review_state)
    has_manifest = credentials_read(data).has_manifest
    definition = update_definition(claim) if has_manifest else manifest_definition(claim)
    return _signer().sign(data, definition, update=has_manifest)


def credentials_verify(*, data: bytes, mime_type: str) -> CredentialReport:
    """What `data`'s manifest says and whether it verifies, trusting ATLAS_C2PA_TRUST_ANCHORS_FILE."""
    return credentials_read(data, mime_type=mime_type, trust_anchors_pem=_trust_anchors())


def credentials_signing_problem() -> str:
    """Sign a tiny PNG the way ingestion would: "" when that works, else what went wrong.

    Catches what reading the files cannot, e.g. a certificate whose key usages C2PA refuses.
    """
    buffer = io.BytesIO()
    PILImage.new("RGB", (8, 8), (128, 96, 80)).save(buffer, format="PNG")
    try:
        credentials_sign_generated(data=buffer.getvalue(), provenance={"model": "check"}, title="check.png", review_state="check")
    except CredentialsError as exc:
        return str(exc)
    return ""


def demo_credentials_ensure() -> str:
    """Create or renew the local demo pair when settings point at it; a line for the operator."""
    if not _uses_demo_pair():
        return "content credentials: signing with ATLAS_C2PA_KEY_FILE (not the demo pair)"
    created = _demo_pair_ensure()
    key_path = Path(settings.ATLAS_C2PA_KEY_FILE)
    state = "created" if created else "present"
    return f"content credentials: demo key pair {state} in {key_path.parent} ({key_path.name}, local use only)"


# --- internals ------------------------------------------------------------------------------


def _claim(provenance: dict, *, title: str, review_state: str) -> SyntheticClaim:
    # Gap filling records the checkpoint's description of its training set (summary, sources, ...).
    training = provenance.get("training_data") or {}
    training = training if isinstance(training, dict) else {"summary": str(training)}
    return SyntheticClaim(
        title=title,
        model=str(provenance.get("model") or "unknown"),
        # A checkpoint is named, never located: a path would tell the world our server's layout.
        checkpoint=checkpoint_name(provenance.get("checkpoint")) or "unknown",
        review_state=review_state,
        checkpoint_step=provenance.get("checkpoint_step"),
        data_fingerprint=str(provenance.get("data_fingerprint") or ""),
        code_version=str(provenance.get("code_version") or ""),
        trained_on=str(training.get("summary") or ""),
        training_data=training,
        generator_version=_atlas_version(),
    )


def _title(image: Image) -> str:
    return f"{image.public_id}{PurePosixPath(image.file.name).suffix}"


@lru_cache(maxsize=1)
def _atlas_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("atlas")
    except PackageNotFoundError:
        return "unknown"


def _signer() -> PngSigner:
    key_file, cert_file = str(settings.ATLAS_C2PA_KEY_FILE), str(settings.ATLAS_C2PA_CERT_FILE)
    demo = _uses_demo_pair()
    if demo and not (Path(key_file).exists() and Path(cert_file).exists()):
        _demo_pair_ensure()
    try:
        signer = _signer_for(key_file, cert_file, _mtime(key_file), _mtime(cert_file))
    except CredentialsError:
        if not demo:
            raise
        # Another process was renewing the demo pair between our two reads: wait for it, retry.
        _demo_pair_ensure()
        signer = _signer_for(key_file, cert_file, _mtime(key_file), _mtime(cert_file))
    now = dt.datetime.now(dt.UTC)
    if demo and now + _DEMO_RENEW_BEFORE >= signer.pair.not_after and _demo_pair_ensure():
        signer = _signer_for(key_file, cert_file, _mtime(key_file), _mtime(cert_file))
    if now >= signer.pair.not_after:
        raise CredentialsError(f"the signing certificate in {cert_file} expired on {signer.pair.not_after:%Y-%m-%d} UTC")
    return signer


@lru_cache(maxsize=4)
def _signer_for(key_file: str, cert_file: str, _key_mtime: float, _cert_mtime: float) -> PngSigner:
    # Keyed by modification times too: a renewed key is picked up without a restart.
    return PngSigner(signing_pair_load(key_file, cert_file))


def _mtime(path: str) -> float:
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return 0.0


def _uses_demo_pair() -> bool:
    if not settings.ATLAS_C2PA_DEMO_KEYS:
        return False
    key_path, cert_path, _ = demo_pair_paths(Path(settings.ATLAS_C2PA_KEY_FILE).parent)
    return Path(settings.ATLAS_C2PA_KEY_FILE) == key_path and Path(settings.ATLAS_C2PA_CERT_FILE) == cert_path


def _demo_pair_ensure() -> bool:
    """Write the demo pair if it is missing, unusable or about to expire. True when written."""
    key_path, cert_path, _ = demo_pair_paths(Path(settings.ATLAS_C2PA_KEY_FILE).parent)
    if _demo_pair_good(key_path, cert_path):
        return False
    key_path.parent.mkdir(parents=True, exist_ok=True)
    # Two processes must not interleave: one's key beside the other's certificate would not match.
    with _demo_lock, open(key_path.parent / ".demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _demo_pair_good(key_path, cert_path):
            return False
        demo_pair_write(key_path.parent)
        return True


def _demo_pair_good(key_path: Path, cert_path: Path) -> bool:
    try:
        pair = signing_pair_load(key_path, cert_path, now=dt.datetime.now(dt.UTC) + _DEMO_RENEW_BEFORE)
    except CredentialsError:
        return False
    return pair.is_demo


def _trust_anchors() -> str:
    if _uses_demo_pair():
        _demo_pair_ensure()
    path = str(settings.ATLAS_C2PA_TRUST_ANCHORS_FILE)
    if not path:
        return ""
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise CredentialsError(f"ATLAS_C2PA_TRUST_ANCHORS_FILE={path!r} cannot be read ({exc.strerror or exc})") from None
