"""Dataset importers: one module per format (metadata parsing only), a registry, and the shared
runner that ingests their rows. `atlas.services.imports.dataset_import` is the entry point.
"""
