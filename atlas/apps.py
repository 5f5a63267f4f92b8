from django.apps import AppConfig


class AtlasConfig(AppConfig):
    name = "atlas"
    verbose_name = "Atlas catalogue"

    def ready(self) -> None:
        from atlas import checks  # noqa: F401 - registers the system checks

        # Make our Celery app the current one in every Django process (web, manage.py, tests),
        # so tasks sent from here go to the configured broker (atlas/__init__.py says why here).
        import atlas.celery  # noqa: F401
