"""Skin-tone measurement on hand-made patches of known colour (no Django)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image as PILImage

from atlas import skin_tone as st


def lab_by_hand(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    """CIELAB from the textbook formulas, written out per channel (independent of the module's
    vectorised code): sRGB -> linear -> XYZ (D65) -> L*, a*, b*."""
    lin = []
    for v in rgb:
        c = v / 255
        lin.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = lin
    x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047
    y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b
    z = (0.0193339 * r + 0.1191920 * g + 0.9503041 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def expected_ita(rgb: tuple[int, int, int]) -> float:
    L, _, b = lab_by_hand(rgb)
    return math.degrees(math.atan((L - 50) / b))


def patch(rgb, size=64) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (size, size, 3)).copy()


# Skin colours from very light to very dark, and the Chardon band of their ITA (by hand, in
# degrees: 71.6, 51.0, 31.9, 23.0, -12.8, -62.7).
SKIN = {
    (246, 220, 200): 1,
    (225, 180, 150): 2,
    (200, 150, 115): 3,
    (190, 140, 100): 4,
    (140, 95, 65): 5,
    (80, 55, 42): 6,
}


def test_lab_matches_reference_values():
    # Published values: sRGB red = (53.24, 80.09, 67.20); mid grey 128 = L* 53.59, a* = b* = 0.
    assert np.allclose(st.srgb_to_lab(np.array([255, 0, 0], np.uint8)), (53.24, 80.09, 67.20), atol=0.01)
    assert np.allclose(st.srgb_to_lab(np.array([128, 128, 128], np.uint8)), (53.59, 0, 0), atol=0.01)
    assert np.allclose(st.srgb_to_lab(np.array([255, 255, 255], np.uint8)), (100, 0, 0), atol=0.01)


@pytest.mark.parametrize("rgb", list(SKIN))
def test_uniform_patch_gives_its_analytic_ita(rgb):
    result = st.measure_skin_tone(patch(rgb), calibration="chardon-1991")
    assert result.ita_measured == pytest.approx(expected_ita(rgb), abs=0.05)
    assert result.ita == result.ita_measured  # the published thresholds: no correction
    assert result.lab == pytest.approx(lab_by_hand(rgb), abs=0.05)
    assert result.rgb == rgb
    assert result.confidence == pytest.approx(1.0)


@pytest.mark.parametrize("rgb,band", list(SKIN.items()))
def test_band_follows_chardon(rgb, band):
    assert st.measure_skin_tone(patch(rgb), calibration="chardon-1991").fitzpatrick == band


@pytest.mark.parametrize(
    "ita,band", [(90, 1), (55.01, 1), (55, 2), (41.01, 2), (41, 3), (28.01, 3), (28, 4), (10.01, 4), (10, 5), (-29.9, 5), (-30, 6), (-89, 6)]
)
def test_chardon_thresholds(ita, band):
    assert st.fitzpatrick_from_ita(ita) == band


def test_lesion_boxes_and_their_margin_are_ignored():
    skin, lesion = (214, 170, 135), (60, 30, 25)
    image = patch(skin, 96)
    image[30:60, 30:60] = lesion
    image[27:63, 27:63][:3] = lesion  # the lesion spills a little beyond its box
    result = st.measure_skin_tone(image, [(30, 30, 30, 30)])
    assert result.ita_measured == pytest.approx(expected_ita(skin), abs=0.05)
    # Without the box the dark lesion is a second cluster, but the mode still finds the skin.
    assert st.measure_skin_tone(image).ita_measured == pytest.approx(expected_ita(skin), abs=0.05)


def test_background_hair_and_shadow_do_not_move_the_tone():
    skin = (190, 140, 100)
    rng = np.random.default_rng(0)
    image = patch(skin, 128).astype(np.float64)
    image[:, :40] = (205, 210, 215)  # a grey-blue wall beside the limb
    image[:, 40:48] = (40, 60, 150)  # blue clothing
    image[100:, 40:] *= 0.55  # a shadow across the bottom
    for x in rng.integers(50, 128, 25):  # dark hairs
        image[10:90, x] = (35, 25, 20)
    image += rng.normal(0, 2, image.shape)  # sensor noise
    result = st.measure_skin_tone(np.clip(image, 0, 255).astype(np.uint8))
    assert result.ita_measured == pytest.approx(expected_ita(skin), abs=2.0)
    assert result.fitzpatrick == 4
    assert 0.5 < result.coverage < 0.75  # the wall, clothing and hairs are not skin; the shadow is
    assert result.concentration < 0.8  # the shadowed skin disagrees with the lit skin


def test_pil_image_and_large_images_are_accepted():
    skin = (232, 196, 170)
    small = st.measure_skin_tone(PILImage.fromarray(patch(skin, 64)))
    large = st.measure_skin_tone(PILImage.fromarray(patch(skin, 1024)), [(100, 100, 300, 300)])
    assert small.ita_measured == pytest.approx(large.ita_measured, abs=0.05)


def test_no_skin_raises():
    with pytest.raises(st.NoSkinError):
        st.measure_skin_tone(patch((128, 128, 128)))  # grey: no skin-coloured pixel
    with pytest.raises(st.NoSkinError):
        st.measure_skin_tone(patch((30, 80, 200)))  # blue


def test_confidence_falls_when_little_skin_shows():
    image = patch((128, 128, 128), 100)
    image[:20, :20] = (214, 170, 135)
    result = st.measure_skin_tone(image)
    assert result.coverage == pytest.approx(0.04, abs=0.005)
    assert result.confidence < 0.2


def test_two_tones_split_lowers_concentration():
    image = patch((246, 220, 200), 100)
    image[:, 60:] = (140, 95, 65)
    result = st.measure_skin_tone(image)
    assert result.fitzpatrick == 1  # the larger part wins
    assert result.concentration == pytest.approx(0.6, abs=0.01)


def test_monk_nearest_swatch():
    for tone, hex_colour in st.MONK_SWATCHES.items():
        rgb = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        assert st.monk_nearest(st.srgb_to_lab(np.array(rgb, np.uint8))) == tone


def test_calibration_is_piecewise_linear_and_extrapolates():
    cal = st.Calibration("test", ((-50.0, -40.0), (0.0, 10.0), (50.0, 50.0)))
    assert cal.apply(0.0) == pytest.approx(10.0)
    assert cal.apply(25.0) == pytest.approx(30.0)
    assert cal.apply(-100.0) == pytest.approx(-90.0)  # slope 1 below the first knot
    assert cal.apply(100.0) == pytest.approx(90.0)  # slope 0.8 above the last
    result = st.measure_skin_tone(patch((214, 170, 135)), calibration=cal)
    assert result.ita == pytest.approx(cal.apply(result.ita_measured))
    with pytest.raises(ValueError, match="unknown skin-tone calibration"):
        st.measure_skin_tone(patch((214, 170, 135)), calibration="nope")


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="RGB"):
        st.measure_skin_tone(np.zeros((10, 10), np.uint8))
