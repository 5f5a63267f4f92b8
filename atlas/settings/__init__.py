"""Settings package: base (shared), local (default for manage.py), test, production."""
