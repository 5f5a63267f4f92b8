"""Signing pairs for tests: a CA and a signer it issued, with the dates and names a test needs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from atlas.content_credentials import DOCUMENT_SIGNING


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def write_pair(
    directory: Path, *, name: str = "signer", valid_from_days: float = -1, valid_days: float = 30,
    self_signed: bool = False, other_key: bool = False, eku: bool = True, ed25519: bool = False,
) -> tuple[Path, Path, Path]:
    """(key, chain, CA) files of an ES256 (or Ed25519) signer valid from now+valid_from_days for valid_days."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{name} test CA")
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=400)).not_valid_after(now + dt.timedelta(days=400))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    new_key = Ed25519PrivateKey.generate if ed25519 else (lambda: ec.generate_private_key(ec.SECP256R1()))
    key = new_key()
    start = now + dt.timedelta(days=valid_from_days)
    builder = (
        x509.CertificateBuilder().subject_name(_name(f"{name} signer")).issuer_name(_name(f"{name} signer") if self_signed else ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + dt.timedelta(days=valid_days))
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )  # fmt: skip
    if eku:
        usages = [DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    signing_key = key if self_signed else ca_key
    leaf = builder.sign(signing_key, None if isinstance(signing_key, Ed25519PrivateKey) else hashes.SHA256())
    written = new_key() if other_key else key
    pem = serialization.Encoding.PEM
    paths = directory / f"{name}.key", directory / f"{name}.pem", directory / f"{name}-ca.pem"
    paths[0].write_bytes(written.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    paths[1].write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    paths[2].write_bytes(ca.public_bytes(pem))
    return paths
