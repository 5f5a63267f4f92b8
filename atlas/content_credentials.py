"""Content credentials (C2PA) for synthetic images: keys, manifests, signing, reading.

Django-free: `atlas/services/credentials.py` binds this to settings; the production settings
call `signing_pair_load` to refuse a bad key before any process starts.

A C2PA signing certificate must not be self-signed, must assert digitalSignature (critical
key usage) and carry an extended key usage C2PA accepts (emailProtection or documentSigning);
the file named as the certificate holds the chain, signer first. `demo_pair_write` makes such a
pair for local use: a throw-away CA (its private key is discarded) and a signer it issued,
both named NOT FOR PRODUCTION.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# IPTC digital source type for media made by a model trained on sampled content.
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
GENERATION_ASSERTION = "org.atlas.generation"  # model, checkpoint (never a file path), training data
REVIEW_ASSERTION = "org.atlas.review"  # the review state when the file was signed
DEMO_MARKER = "NOT FOR PRODUCTION"
DEMO_STEM = "demo-NOT-FOR-PRODUCTION"
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
# Reading never reaches the network (remote manifests, OCSP); files are signed without a
# thumbnail of their own pixels (the manifest stays ~3 KB).
_READ_SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
_SIGN_SETTINGS = {**_READ_SETTINGS, "builder": {"thumbnail": {"enabled": False}}}


class CredentialsError(ValueError):
    """A signing key or certificate that cannot be used, or a file that could not be signed."""


@dataclass(frozen=True)
class SigningPair:
    key_pem: bytes
    chain_pem: bytes
    alg: str  # c2pa's name: es256, es384, es512, ps256, ed25519
    subject: str
    not_after: dt.datetime

    @property
    def is_demo(self) -> bool:
        return DEMO_MARKER in self.subject


# --- keys and certificates ------------------------------------------------------------------


def signing_pair_load(key_path: str | Path, cert_path: str | Path, *, now: dt.datetime | None = None) -> SigningPair:
    """Read and check a private key and its certificate chain; CredentialsError says what is wrong."""
    key_pem = _read(key_path, "ATLAS_C2PA_KEY_FILE", "private key")
    chain_pem = _read(cert_path, "ATLAS_C2PA_CERT_FILE", "certificate chain")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CredentialsError(f"{key_path} is not an unencrypted PEM private key: {exc}") from None
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
    except ValueError as exc:
        raise CredentialsError(f"{cert_path} is not a PEM certificate chain: {exc}") from None
    leaf = chain[0]
    _check_leaf(leaf, key, cert_path, now or dt.datetime.now(dt.UTC))
    return SigningPair(
        key_pem=key_pem, chain_pem=chain_pem, alg=_alg(key, key_path), subject=leaf.subject.rfc4514_string(),
        not_after=leaf.not_valid_after_utc,
    )


def _read(path: str | Path, setting: str, what: str) -> bytes:
    if not str(path):
        raise CredentialsError(f"{setting} is not set: C2PA signing needs a {what}")
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CredentialsError(f"{setting}={str(path)!r}: the {what} cannot be read ({exc.strerror or exc})") from None


def _check_leaf(leaf: x509.Certificate, key, cert_path, now: dt.datetime) -> None:
    public = leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ours = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if public != ours:
        raise CredentialsError(f"the private key does not match the first certificate in {cert_path} ({leaf.subject.rfc4514_string()})")
    if now < leaf.not_valid_before_utc:
        raise CredentialsError(f"the signing certificate in {cert_path} is not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    if now >= leaf.not_valid_after_utc:
        raise CredentialsError(f"the signing certificate in {cert_path} expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if leaf.issuer == leaf.subject:
        raise CredentialsError(
            f"the signing certificate in {cert_path} is self-signed; C2PA needs one issued by a CA, listed signer first"
        )


def _alg(key, key_path) -> str:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        curves = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in curves:
            return curves[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    raise CredentialsError(f"{key_path}: C2PA signs with Ed25519, ECDSA P-256/384/521 or RSA keys, not {type(key).__name__}")


def demo_pair_paths(directory: str | Path) -> tuple[Path, Path, Path]:
    """(key, certificate chain, CA certificate) of the local demo pair in `directory`."""
    directory = Path(directory)
    return directory / f"{DEMO_STEM}.key", directory / f"{DEMO_STEM}.pem", directory / f"{DEMO_STEM}-ca.pem"


def demo_pair_write(directory: str | Path, *, days: int = 365) -> tuple[Path, Path, Path]:
    """Create the local demo CA and signer (ES256). Each file is written whole, then renamed."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"Atlas local demo CA ({DEMO_MARKER})")
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), now, days + 1)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        _builder(_name(f"Atlas local demo signer ({DEMO_MARKER})"), ca_name, key.public_key(), now, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_path, cert_path, ca_path = demo_pair_paths(directory)
    pem = serialization.Encoding.PEM
    _write_atomic(key_path, key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o600)
    _write_atomic(cert_path, leaf.public_bytes(pem) + ca.public_bytes(pem), 0o644)
    _write_atomic(ca_path, ca.public_bytes(pem), 0o644)
    return key_path, cert_path, ca_path


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"Atlas local demo ({DEMO_MARKER})"),
    ])  # fmt: skip


def _builder(subject, issuer, public_key, now: dt.datetime, days: int) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# --- manifests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticClaim:
    """What a synthetic file's manifest states. No field may hold a server path."""

    title: str
    model: str
    checkpoint: str
    review_state: str
    checkpoint_step: int | None = None
    data_fingerprint: str = ""
    code_version: str = ""
    trained_on: str = ""  # a sentence: what the model learnt from
    training_data: dict = field(default_factory=dict)  # the checkpoint's description of its training set
    generator_version: str = ""


def manifest_definition(claim: SyntheticClaim) -> dict:
    """The manifest of a freshly generated file: created by a trained model, which one, review state."""
    return {
        "claim_generator_info": [{"name": "Atlas", "version": claim.generator_version or "unknown"}],
        "title": claim.title,
        "format": "image/png",
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [{
                        "action": "c2pa.created",
                        "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                        "softwareAgent": {"name": claim.model, "version": claim.checkpoint},
                        "description": "Generated by a GAN for a teaching atlas; not a photograph of a patient.",
                    }],
                },
            },  # fmt: skip
            {"label": GENERATION_ASSERTION, "data": _generation_data(claim)},
            {"label": REVIEW_ASSERTION, "data": {"state": claim.review_state}},
        ],
    }


def update_definition(claim: SyntheticClaim) -> dict:
    """The manifest added on export: the earlier one becomes its parent; the review state is now's."""
    return {
        "claim_generator_info": [{"name": "Atlas", "version": claim.generator_version or "unknown"}],
        "title": claim.title,
        "format": "image/png",
        "assertions": [
            {"label": GENERATION_ASSERTION, "data": _generation_data(claim)},
            {"label": REVIEW_ASSERTION, "data": {"state": claim.review_state}},
        ],
    }


def _generation_data(claim: SyntheticClaim) -> dict:
    data = {
        "digital_source_type": TRAINED_ALGORITHMIC_MEDIA,
        "model": claim.model,
        "checkpoint": claim.checkpoint,
        "checkpoint_step": claim.checkpoint_step,
        "data_fingerprint": claim.data_fingerprint,
        "code_version": claim.code_version,
        "trained_on": claim.trained_on,
        "training_data": claim.training_data,
    }
    return {key: value for key, value in data.items() if value not in (None, "", {})}


def checkpoint_name(checkpoint: object) -> str:
    """A checkpoint as public output names it: its file name (and step), never where it lies."""
    return PurePosixPath(str(checkpoint or "").replace("\\", "/")).name


# --- signing and reading --------------------------------------------------------------------


class PngSigner:
    """Signs PNG files with one key pair. Holds c2pa's native signer; one signature at a time."""

    def __init__(self, pair: SigningPair) -> None:
        import c2pa  # a 23 MB native library: loaded by the processes that sign, when they first do

        self.pair = pair
        self._c2pa = c2pa
        self._signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(pair.alg, pair.chain_pem, pair.key_pem, None))
        self._context = c2pa.Context.from_dict(_SIGN_SETTINGS)
        self._lock = threading.Lock()

    def sign(self, data: bytes, definition: dict, *, update: bool = False) -> bytes:
        """`data` with the manifest embedded. update=True keeps `data`'s own manifest as the parent."""
        c2pa = self._c2pa
        out = io.BytesIO()
        with self._lock:
            try:
                builder = c2pa.Builder(json.dumps(definition), context=self._context)
                if update:
                    builder.set_intent(c2pa.C2paBuilderIntent.UPDATE)
                builder.sign(self._signer, "image/png", io.BytesIO(data), out)
            except c2pa.C2paError as exc:
                raise CredentialsError(f"C2PA signing failed: {exc}") from None
        return out.getvalue()


@dataclass
class CredentialReport:
    """What a file's content credentials say, and whether they verify."""

    has_manifest: bool
    state: str = ""  # c2pa's validation state: Invalid, Valid (signature and hashes), Trusted
    failures: list[str] = field(default_factory=list)  # "code: explanation", trust aside
    trusted: bool = False
    trust_note: str = ""
    title: str = ""
    signer: str = ""
    alg: str = ""
    manifest_count: int = 0
    digital_source_types: list[str] = field(default_factory=list)  # from every manifest in the file
    generation: dict = field(default_factory=dict)
    review_state: str = ""
    error: str = ""

    @property
    def verified(self) -> bool:
        return self.has_manifest and self.state in ("Valid", "Trusted") and not self.failures

    @property
    def is_trained_algorithmic_media(self) -> bool:
        return TRAINED_ALGORITHMIC_MEDIA in self.digital_source_types


def credentials_read(data: bytes, *, mime_type: str = "image/png", trust_anchors_pem: str = "") -> CredentialReport:
    """Read and validate the manifest store embedded in `data` (offline)."""
    import c2pa

    settings: dict = {**_READ_SETTINGS}
    if trust_anchors_pem:
        settings = {**settings, "verify": {**_READ_SETTINGS["verify"], "verify_trust": True},
                    "trust": {"trust_anchors": trust_anchors_pem}}  # fmt: skip
    try:
        reader = c2pa.Reader(mime_type, io.BytesIO(data), context=c2pa.Context.from_dict(settings))
    except c2pa.C2paError as exc:
        if "ManifestNotFound" in type(exc).__name__ or "no JUMBF" in str(exc) or "not found" in str(exc).lower():
            return CredentialReport(has_manifest=False)
        return CredentialReport(has_manifest=False, error=str(exc))
    with reader:
        store = json.loads(reader.json())
        results = reader.get_validation_results() or {}
        state = reader.get_validation_state() or ""
    return _report(store, results, state, bool(trust_anchors_pem))


def _report(store: dict, results: dict, state: str, trust_configured: bool) -> CredentialReport:
    failures = results.get("activeManifest", {}).get("failure", [])
    untrusted = [f for f in failures if f.get("code") == "signingCredential.untrusted"]
    manifests = store.get("manifests", {})
    active = manifests.get(store.get("active_manifest", ""), {})
    report = CredentialReport(
        has_manifest=bool(active),
        state=state,
        failures=[f"{f.get('code')}: {f.get('explanation', '')}" for f in failures if f not in untrusted],
        trusted=state == "Trusted",
        trust_note=(
            "signer chains to a configured trust anchor" if state == "Trusted"
            else "signer is not on the configured trust list" if trust_configured
            else "no trust anchors configured: signature checked, signer not vouched for"
        ),
        title=active.get("title", ""),
        signer=_signer(active.get("signature_info", {})),
        alg=active.get("signature_info", {}).get("alg", ""),
        manifest_count=len(manifests),
    )  # fmt: skip
    for manifest in manifests.values():
        for assertion in manifest.get("assertions", []):
            for action in assertion.get("data", {}).get("actions", []) if assertion.get("label", "").startswith("c2pa.actions") else []:
                if action.get("digitalSourceType") and action["digitalSourceType"] not in report.digital_source_types:
                    report.digital_source_types.append(action["digitalSourceType"])
    for assertion in active.get("assertions", []):
        if assertion.get("label") == GENERATION_ASSERTION:
            report.generation = assertion.get("data", {})
        elif assertion.get("label") == REVIEW_ASSERTION:
            report.review_state = assertion.get("data", {}).get("state", "")
    return report


def _signer(info: dict) -> str:
    return ", ".join(part for part in (info.get("common_name", ""), info.get("issuer", "")) if part)
