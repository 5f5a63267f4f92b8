import random

import pytest
from PIL import Image as PILImage

from generation.crops import roi_crop
from generation.semantic_map import Box, MapError


def _image(w, h):
    return PILImage.new("RGB", (w, h), (200, 150, 120))


def test_crop_holds_the_box_in_crop_coordinates():
    image = _image(400, 300)
    image.paste((10, 10, 10), (250, 100, 290, 140))
    for seed in range(20):
        crop = roi_crop(image, [Box(250, 100, 40, 40)], window=128, rng=random.Random(seed))
        assert crop.image.size == (128, 128)
        (box,) = crop.boxes
        assert (box.width, box.height) == (40, 40)
        # The dark lesion is where the carried box says.
        assert crop.image.getpixel((box.x + 20, box.y + 20)) == (10, 10, 10)


def test_adjacent_boxes_are_grouped_and_distant_ones_left_out():
    image = _image(1000, 1000)
    near, also_near, far = Box(100, 100, 20, 20), Box(150, 130, 20, 20), Box(900, 900, 20, 20)
    crop = roi_crop(image, [near, also_near, far], window=128, rng=random.Random(0))
    assert len(crop.boxes) in (1, 2)
    sizes = sorted((b.width, b.height) for b in crop.boxes)
    assert all(s == (20, 20) for s in sizes)


def test_small_image_is_scaled_up_not_padded():
    crop = roi_crop(_image(50, 80), [Box(10, 10, 20, 20)], window=128, rng=random.Random(0))
    assert crop.image.size == (128, 128)
    (box,) = crop.boxes
    assert box.width > 40  # scaled by 128/50
    assert crop.image.getpixel((0, 0)) == (200, 150, 120)  # no padding colour


def test_box_larger_than_window_is_kept_whole_by_resizing():
    crop = roi_crop(_image(600, 600), [Box(50, 50, 400, 300)], window=128, rng=random.Random(0))
    (box,) = crop.boxes
    assert box.width <= 128 and box.width >= 120


@pytest.mark.parametrize("boxes", [[], [Box(390, 10, 20, 20)], [Box(10, 10, 0, 5)]])
def test_bad_boxes_are_refused(boxes):
    with pytest.raises(MapError):
        roi_crop(_image(400, 300), boxes, window=128, rng=random.Random(0))


def test_window_tries_keeps_the_most_skin_covered_window():
    """With tries, the crop is the best-scoring window around the group: a lesion next to a
    background band is cut with as little background as the group allows."""
    import numpy as np
    from PIL import Image

    from atlas.skin_tone import skin_share

    arr = np.zeros((300, 600, 3), dtype=np.uint8)
    arr[:, :] = (224, 172, 140)  # skin
    arr[:, :200] = (20, 90, 30)  # green cloth on the left
    image = Image.fromarray(arr)
    box = Box(x=260, y=120, width=40, height=40)

    def score(crop):
        return skin_share(crop.image, [(b.x, b.y, b.width, b.height) for b in crop.boxes])

    plain = [score(roi_crop(image, [box], window=128, rng=random.Random(seed))) for seed in range(20)]
    chosen = [score(roi_crop(image, [box], window=128, rng=random.Random(seed), tries=6, score=score)) for seed in range(20)]
    assert min(chosen) >= min(plain)
    assert sum(chosen) / 20 > sum(plain) / 20
    assert min(chosen) > 0.99  # six windows nearly always include one clear of the cloth


def test_one_try_cuts_the_same_window_as_before():
    from PIL import Image

    image = Image.new("RGB", (400, 300), (200, 150, 120))
    box = Box(x=150, y=100, width=30, height=30)
    a = roi_crop(image, [box], window=128, rng=random.Random(3))
    b = roi_crop(image, [box], window=128, rng=random.Random(3), tries=1, score=lambda c: 1.0)
    assert a.origin == b.origin
