"""The procedural demo atlas: deterministic, NOT clinical, clinical-style skin photographs.

`render` and `distribution` are Django-free (numpy + Pillow); `seed` stores through ingestion.
"""
