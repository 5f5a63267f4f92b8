"""Calibrated defaults of the automatic gates (generation.gates), with where each comes from.

Plain constants (no imports): the settings read them as defaults, so a deployment overrides a
threshold with its environment variable and the figures behind each default stay here.
Re-measure with `python manage.py calibrate_gates` (docs/gap-filling.md, "Gates").

The run behind these defaults (2026-12-01): `calibrate_gates --json` on the demo atlas
(seed_demo seed 0, 3,000 images; the shipped fast model dermgan-fast.pt@2500: 128 px windows at
64 px; encoder atlas-crop-encoder[real, bd9d9617], 400 steps). 317 held-out real crops (cases
the training side never holds: distinct images) against the index of 2,683 training-side
crops, and the first 50 indexed crops against the index (exact copies).
"""

# Near-copy gate. Distinct real images: nearest cosine median 0.9924, 99th percentile 0.9990,
# max 0.9994; nearest pHash distance min 8 bits, median 16. Exact copies: cosine >= 0.9999,
# distance 0. The cosine threshold sits between the closest distinct pair and the copies (the
# encoder, trained to tell condition and type apart, puts same-cell crops close together, so its
# margin is thin); the hash threshold at half the closest distinct distance is the wide margin.
COPY_CALIBRATION = {
    "max_cosine": 0.9997,  # encoder cosine at or above this: a near-copy
    "max_hash_distance": 4,  # pHash distance at or below this (of 64 bits): a near-copy
    "provenance": "calibrate_gates, demo atlas seed 0, 2026-12-01: distinct max cosine 0.9994, "
                  "copies >= 0.9999; distinct min hash distance 8, copies 0",
}

# Defect gate. The 317 held-out real crops: cast max 0.20 (99th pct 0.15), contrast min 2.34,
# frame max 1.75 (99th pct 1.03), checker max 0.011. Each threshold leaves a real crop's worst
# value well inside: no real photograph of the run counts as defective.
DEFECT_CALIBRATION = {
    "max_cast": 0.5,  # chroma / 40 of a mean colour with a non-skin hue (real max 0.20)
    "min_contrast": 1.5,  # standard deviation of L* (real min 2.34)
    "max_frame": 6.0,  # Delta E of the weakest of the four border steps (real max 1.75)
    "max_checker": 0.05,  # signed 2x2 pixel pattern over the mean neighbour step (real max 0.011)
    "provenance": "calibrate_gates, demo atlas seed 0, 2026-12-01: 317 held-out real crops",
}
