import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlas.taxonomy import SEED_CONDITIONS
from generation.semantic_map import (
    SKIN_LEVELS, Box, MapError, MapSpec, centred_box, decode, encode, with_skin_type,
)

VOCAB = tuple(sorted(c.slug for c in SEED_CONDITIONS))
W, H = 48, 40


@st.composite
def specs(draw):
    """One condition on one skin type with 1-3 boxes that neither overlap nor touch."""
    boxes = []
    for _ in range(draw(st.integers(1, 3))):
        x, y = draw(st.integers(0, W - 1)), draw(st.integers(0, H - 1))
        w, h = draw(st.integers(1, W - x)), draw(st.integers(1, H - y))
        box = Box(x, y, w, h)
        # Keep a one-pixel gap so connected components give the boxes back exactly.
        if all(box.x > b.x + b.width or b.x > box.x + box.width or box.y > b.y + b.height or b.y > box.y + box.height
               for b in boxes):
            boxes.append(box)
    return MapSpec(draw(st.sampled_from(VOCAB)), draw(st.integers(1, 6)), tuple(sorted(boxes, key=lambda b: (b.y, b.x))))


@settings(max_examples=150, deadline=None)
@given(specs())
def test_decode_inverts_encode(spec):
    m = encode(spec, width=W, height=H, vocabulary=VOCAB)
    assert decode(m, vocabulary=VOCAB) == spec
    assert np.array_equal(encode(decode(m, vocabulary=VOCAB), width=W, height=H, vocabulary=VOCAB), m)


@pytest.mark.parametrize("condition", VOCAB)
@pytest.mark.parametrize("skin_type", range(1, 7))
def test_every_condition_and_skin_type_round_trips(condition, skin_type):
    spec = MapSpec(condition, skin_type, (Box(3, 4, 10, 7),))
    m = encode(spec, width=W, height=H, vocabulary=VOCAB)
    assert decode(m, vocabulary=VOCAB) == spec
    assert (m[..., 0] == SKIN_LEVELS[skin_type]).all()
    assert not m[..., 1:][m[..., 1:].any(axis=2) == 0].any()  # zero outside the box


def test_codes_are_distinct_and_non_zero():
    codes = {tuple(encode(MapSpec(c, 1, (Box(0, 0, 1, 1),)), width=2, height=2, vocabulary=VOCAB)[0, 0, 1:]) for c in VOCAB}
    assert len(codes) == len(VOCAB) and all(all(v > 0 for v in code) for code in codes)


@pytest.mark.parametrize(
    "spec, message",
    [
        (MapSpec("not-a-condition", 3, (Box(0, 0, 4, 4),)), "unknown condition"),
        (MapSpec("melanoma", 0, (Box(0, 0, 4, 4),)), "skin type"),
        (MapSpec("melanoma", 7, (Box(0, 0, 4, 4),)), "skin type"),
        (MapSpec("melanoma", 3, (Box(40, 0, 10, 4),)), "outside"),
        (MapSpec("melanoma", 3, (Box(-1, 0, 4, 4),)), "outside"),
        (MapSpec("melanoma", 3, (Box(0, 0, 0, 4),)), "empty box"),
        (MapSpec("melanoma", 3, ()), "at least one box"),
    ],
)
def test_bad_specs_are_refused(spec, message):
    with pytest.raises(MapError, match=message):
        encode(spec, width=W, height=H, vocabulary=VOCAB)


def test_decode_refuses_maps_that_are_not_maps():
    good = encode(MapSpec("melanoma", 2, (Box(1, 1, 5, 5),)), width=W, height=H, vocabulary=VOCAB)
    bad_skin = good.copy()
    bad_skin[0, 0, 0] = 17
    with pytest.raises(MapError, match="R channel"):
        decode(bad_skin, vocabulary=VOCAB)
    with pytest.raises(MapError, match="no ROI"):
        decode(with_skin_type(np.where(good > 0, 0, good).astype(np.uint8) + 0, 2), vocabulary=VOCAB)
    bad_code = good.copy()
    bad_code[1, 1, 1] = 1
    with pytest.raises(MapError):
        decode(bad_code, vocabulary=VOCAB)


def test_centred_box_stays_inside_and_scales():
    small, large = centred_box(size=0.2, width=64, height=64), centred_box(size=0.9, width=64, height=64, centre=(1, 1))
    assert small.width < large.width
    assert large.x + large.width <= 64 and large.y + large.height <= 64
    with pytest.raises(MapError):
        centred_box(size=1.5, width=64, height=64)
