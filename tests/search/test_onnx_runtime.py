"""The query encoder on ONNX Runtime: same vectors as torch, refuses another model's export,
and the web path runs without importing torch."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from search.clip_tokenizer import ClipTokenizer
from search.encoder import EncoderUnavailable, load_encoder, model_version
from search.onnx_runtime import OnnxMismatch, load_onnx_encoder, onnx_paths
from tests.search.conftest import MODEL

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "search" / "demo_model" / "atlas-clip-rn.pt"
TEXTS = [
    "melanoma on dark brown skin",
    "Psoriasis, Fitzpatrick type VI",
    "a clinical photograph of eczema on the forearm",
    "scaly red patch behind the knee that itches at night " * 6,  # past the context length
    "vitiligo",
    "Café-au-lait spots &amp; naevi — type V",
    "",
]


def pictures() -> list[PILImage.Image]:
    """Photographs are not noise: smooth blobs, gradients and JPEG artefacts, several shapes and modes."""
    rng = np.random.default_rng(7)
    out = []
    for width, height in ((256, 256), (320, 200), (97, 181), (64, 48), (600, 400)):
        y, x = np.mgrid[0:height, 0:width]
        base = np.stack([120 + 60 * np.sin(x / (9 + c) + c) * np.cos(y / 13) for c in range(3)], axis=2)
        spot = np.exp(-((x - width * rng.random()) ** 2 + (y - height * rng.random()) ** 2) / (0.02 * width * height))
        pixels = (base - 80 * spot[..., None] + rng.normal(0, 8, base.shape)).clip(0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        PILImage.fromarray(pixels).save(buffer, format="JPEG", quality=80)
        out.append(PILImage.open(io.BytesIO(buffer.getvalue())))
    out.append(out[0].convert("L"))
    out.append(out[1].convert("RGBA"))
    return out


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def assert_agrees(model_name: str, checkpoint: Path) -> None:
    torch_encoder = load_encoder(model_name, str(checkpoint), "cpu")
    onnx_encoder = load_onnx_encoder(model_name, str(checkpoint))
    assert onnx_encoder.version == torch_encoder.version == model_version(model_name, str(checkpoint))
    images = pictures()
    assert cosines(onnx_encoder.embed_images(images), torch_encoder.embed_images(images)).min() > 0.999
    assert cosines(onnx_encoder.embed_texts(TEXTS), torch_encoder.embed_texts(TEXTS)).min() > 0.999


def test_onnx_vectors_agree_with_torch_on_images_and_texts(tiny_checkpoint):
    assert_agrees(MODEL, tiny_checkpoint)


@pytest.mark.slow
def test_the_shipped_models_onnx_export_agrees_with_torch(tmp_path):
    """The default model (a ResNet image tower): the one whose attention pool the exporter once got wrong."""
    from search.onnx_export import export_onnx

    checkpoint = tmp_path / SHIPPED.name
    shutil.copyfile(SHIPPED, checkpoint)
    report = export_onnx(model_name="atlas-clip-rn", pretrained=str(checkpoint))
    assert report.image_cosine > 0.999 and report.text_cosine > 0.999
    assert_agrees("atlas-clip-rn", checkpoint)


def test_preprocessing_matches_open_clips_transform(tiny_checkpoint):
    torch_encoder = load_encoder(MODEL, str(tiny_checkpoint), "cpu")
    onnx_encoder = load_onnx_encoder(MODEL, str(tiny_checkpoint))
    for image in pictures():
        np.testing.assert_allclose(onnx_encoder.pixels(image), torch_encoder.preprocess(image).numpy(), atol=1e-5)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.text(max_size=120))
def test_the_torch_free_tokenizer_matches_open_clips(text):
    import open_clip

    assert np.array_equal(ours(text), open_clip.get_tokenizer(MODEL)([text]).numpy()[0])


def ours(text: str) -> np.ndarray:
    return _tokenizer()([text])[0]


def _tokenizer(cache={}) -> ClipTokenizer:  # noqa: B006 - one vocabulary load for all examples
    if "t" not in cache:
        cache["t"] = ClipTokenizer(context_length=32)
    return cache["t"]


def another_checkpoint(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    """Another version of the model (other weights) with the tiny model's exports copied beside it."""
    other = tmp_path / "other.pt"
    other.write_bytes(tiny_checkpoint.read_bytes() + b"\0")  # other contents: another model version
    for tower, path in onnx_paths(MODEL, str(tiny_checkpoint)).items():
        shutil.copyfile(path, onnx_paths(MODEL, str(other))[tower])
    return other


def test_an_export_of_another_model_version_is_refused(tiny_checkpoint, tmp_path):
    other = another_checkpoint(tiny_checkpoint, tmp_path)
    with pytest.raises(OnnxMismatch, match=rf"exported from '{MODEL}@.*', but the configured model is '{MODEL}@.*search_export_onnx"):
        load_onnx_encoder(MODEL, str(other))


def test_a_missing_export_says_how_to_make_one(tiny_checkpoint, tmp_path):
    lone = tmp_path / "lone.pt"
    shutil.copyfile(tiny_checkpoint, lone)
    with pytest.raises(EncoderUnavailable, match="search_export_onnx"):
        load_onnx_encoder(MODEL, str(lone))


@pytest.mark.django_db
def test_search_names_the_mismatch_and_the_deploy_check_fails(search_settings, tmp_path):
    from django.core.checks import run_checks

    from search.errors import SearchUnavailable
    from search.query import search_text

    search_settings.SEARCH_CLIP_PRETRAINED = str(another_checkpoint(Path(search_settings.SEARCH_CLIP_PRETRAINED), tmp_path))
    with pytest.raises(SearchUnavailable, match="exported from"):
        search_text(query="melanoma")
    errors = run_checks(tags=["search"], include_deployment_checks=True)
    assert [e.id for e in errors] == ["search.E001"] and "exported from" in errors[0].msg


def web_env(checkpoint: Path, tmp_path: Path) -> dict:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SEARCH_"))},
        "DJANGO_SETTINGS_MODULE": "atlas.settings.test",
        "ATLAS_VAR_DIR": str(tmp_path / "var"),
        "SEARCH_CLIP_MODEL": MODEL,
        "SEARCH_CLIP_PRETRAINED": str(checkpoint),
        "PYTHONPATH": str(ROOT),
    }


WEB_PATH = r"""
import json, sys
from PIL import Image
from atlas.wsgi import application  # django.setup(), as a gunicorn worker does
from django.urls import get_resolver

def views(patterns):
    for p in patterns:
        yield from views(p.url_patterns) if hasattr(p, "url_patterns") else [p.callback]

list(views(get_resolver().url_patterns))  # every view module imported
import search.query
from search.indexing import query_encoder_get
encoder = query_encoder_get()
text = encoder.embed_texts(["melanoma on dark skin"])
image = encoder.embed_images([Image.new("RGB", (90, 70), (150, 100, 80))])
heavy = sorted(m for m in ("torch", "torchvision", "open_clip") if m in sys.modules)
print("RESULT=" + json.dumps({"heavy": heavy, "type": type(encoder).__name__, "shapes": [text.shape, image.shape]}))
"""


@pytest.mark.slow
def test_the_web_path_embeds_queries_without_importing_torch(tiny_checkpoint, tmp_path):
    done = subprocess.run([sys.executable, "-c", WEB_PATH], cwd=ROOT, env=web_env(tiny_checkpoint, tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(next(x for x in done.stdout.splitlines() if x.startswith("RESULT=")).removeprefix("RESULT="))
    assert result["type"] == "OnnxEncoder" and result["shapes"][0][0] == result["shapes"][1][0] == 1
    assert result["heavy"] == []


@pytest.mark.slow
def test_gunicorn_refuses_to_start_with_another_models_export(tiny_checkpoint, tmp_path):
    other = another_checkpoint(tiny_checkpoint, tmp_path)
    env = {**web_env(other, tmp_path), "GUNICORN_BIND": "127.0.0.1:0", "WEB_CONCURRENCY": "1",
           "ATLAS_PROMETHEUS_BASE": str(tmp_path / "prometheus")}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    done = subprocess.run([str(gunicorn), "-c", "scripts/gunicorn.conf.py", "atlas.wsgi"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "refusing to start" in done.stderr and "exported from" in done.stderr


@pytest.mark.django_db
def test_backups_keep_the_onnx_export_beside_a_checkpoint_in_the_var_dir(settings, tiny_checkpoint, tmp_path):
    from atlas.ops.backup import model_files

    settings.VAR_DIR = tmp_path
    checkpoint = tmp_path / "search" / "clip" / "tiny.pt"
    checkpoint.parent.mkdir(parents=True)
    shutil.copyfile(tiny_checkpoint, checkpoint)
    settings.SEARCH_CLIP_MODEL, settings.SEARCH_CLIP_PRETRAINED = MODEL, str(checkpoint)
    assert model_files() == ["search/clip/tiny.pt"]
    for tower, path in onnx_paths(MODEL, str(tiny_checkpoint)).items():
        shutil.copyfile(path, onnx_paths(MODEL, str(checkpoint))[tower])
    assert sorted(model_files()) == ["search/clip/tiny.image.onnx", "search/clip/tiny.pt", "search/clip/tiny.text.onnx"]
