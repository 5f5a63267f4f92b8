"""Production: PostgreSQL, Redis or RabbitMQ, DEBUG off, secrets required."""

from django.core.exceptions import ImproperlyConfigured

from atlas.content_credentials import CredentialsError, signing_pair_load
from atlas.env import env_bool, env_int, env_secret, env_str
from atlas.settings.base import *  # noqa: F403
from atlas.settings.base import API_CACHE_URL, DATABASE_URL

DEBUG = False
SECRET_KEY = env_secret("SECRET_KEY")
if len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) must be set to at least 50 random characters")
if DATABASE_URL.startswith("sqlite"):
    raise ImproperlyConfigured("production needs DATABASE_URL pointing at PostgreSQL")
# Throttle counters in each process's memory multiply every limit by the number of processes.
if not API_CACHE_URL and not env_bool("API_THROTTLE_PER_PROCESS", False):
    raise ImproperlyConfigured(
        "production needs API_CACHE_URL (redis://...) so every web process shares the throttle counts; "
        "set API_THROTTLE_PER_PROCESS=true to count in each process knowingly (one process only)"
    )

# Content credentials: synthetic files are signed with the operator's own key; the demo pair
# never signs in production. A missing, unreadable, expired or mismatched pair stops the start.
ATLAS_C2PA_DEMO_KEYS = False
ATLAS_C2PA_KEY_FILE = env_str("ATLAS_C2PA_KEY_FILE")
ATLAS_C2PA_CERT_FILE = env_str("ATLAS_C2PA_CERT_FILE")
ATLAS_C2PA_TRUST_ANCHORS_FILE = env_str("ATLAS_C2PA_TRUST_ANCHORS_FILE")
try:
    _c2pa_pair = signing_pair_load(ATLAS_C2PA_KEY_FILE, ATLAS_C2PA_CERT_FILE)
except CredentialsError as _exc:
    raise ImproperlyConfigured(f"content credentials (C2PA): {_exc}") from None
if _c2pa_pair.is_demo:
    raise ImproperlyConfigured("content credentials (C2PA): ATLAS_C2PA_CERT_FILE is the local demo pair (NOT FOR PRODUCTION)")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Operations ---
# Load balancers and Prometheus probe these over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
