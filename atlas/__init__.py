"""Atlas: the Django project and the catalogue of clinical skin images.

The Celery app is not imported here, so Django-free code (the vocabularies in atlas/skin.py,
atlas/taxonomy.py, the training scripts that use them) loads neither Django nor Celery.
Django processes import it in AtlasConfig.ready(); `celery -A atlas` finds `atlas.celery`.
"""


def __getattr__(name: str):
    # PEP 562: `atlas.celery_app` still works, loading the app on first use.
    if name == "celery_app":
        from atlas.celery import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["celery_app"]
