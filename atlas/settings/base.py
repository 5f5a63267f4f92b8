"""Settings shared by every run mode. Values come from the environment (see docs/configuration.md)."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from celery.schedules import crontab

from atlas.env import env_bool, env_float, env_int, env_list, env_secret, env_str, env_trusted_proxies

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("ATLAS_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_secret("SECRET_KEY", "insecure-local-development-key-do-not-use-in-production")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_celery_beat",
    "atlas",
    "generation",
    "search",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "atlas.urls"
WSGI_APPLICATION = "atlas.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database_from_url(url: str) -> dict:
    config = dj_database_url.parse(url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # The web process and the local worker write to the same file: WAL lets readers
        # go on during a write, IMMEDIATE transactions avoid "database is locked" upgrades.
        config["CONN_MAX_AGE"] = 0
        if config["NAME"] and config["NAME"] != ":memory:":
            Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        config["OPTIONS"] = {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    else:
        config["CONN_HEALTH_CHECKS"] = True
    return config


DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'atlas.sqlite3'}")
DATABASES = {"default": _database_from_url(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "atlas" / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGIN_URL = "admin:login"

# --- Celery -----------------------------------------------------------------------------
# The default broker is kombu's filesystem transport under var/: no server to install.
# Production sets CELERY_BROKER_URL to Redis or RabbitMQ.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost//")
_BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem"):
    for _folder in ("queue", "control"):
        (_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3 * 3600, minimum=60)}
)
# Job state lives in our own tables (GenerationJob, IndexBuild), never in a result backend.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "generation.tasks.*": {"queue": "generation"},
    "search.tasks.*": {"queue": "indexing"},
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULE: dict = {}

# --- Atlas ------------------------------------------------------------------------------
# Ingestion limits: an upload over either is refused before it is decoded.
ATLAS_MAX_UPLOAD_BYTES = env_int("ATLAS_MAX_UPLOAD_BYTES", 25 * 1024 * 1024, minimum=1024)
ATLAS_MAX_IMAGE_PIXELS = env_int("ATLAS_MAX_IMAGE_PIXELS", 40_000_000, minimum=1)
ATLAS_THUMBNAIL_SIZE = env_int("ATLAS_THUMBNAIL_SIZE", 256, minimum=32)
ATLAS_JPEG_QUALITY = env_int("ATLAS_JPEG_QUALITY", 90, minimum=1)
# Every upload path (web photo search, API uploads and photo search, admin): a body whose
# Content-Length is over the limit is a 413 before it is read; files are kept in memory up to
# the limit and never written to a temporary file (atlas/uploads.py).
FILE_UPLOAD_HANDLERS = ["atlas.uploads.LimitedMemoryUploadHandler"]
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.csrf.CsrfViewMiddleware"), "atlas.uploads.UploadLimitMiddleware")
# Dotted paths of Celery tasks called with the new image's id after an ingestion commits.
ATLAS_AFTER_INGEST_TASKS: list[str] = env_list("ATLAS_AFTER_INGEST_TASKS", ["search.tasks.embed_image_task"])
# Dotted paths of callables run after seed_demo added images, each given the DemoSeedSummary
# and returning a line to print (demo images are ingested without per-image follow-ups).
ATLAS_AFTER_DEMO_SEED: list[str] = env_list("ATLAS_AFTER_DEMO_SEED")
# Skin-tone measurement (atlas/skin_tone.py, docs/skin-tone.md): the ITA calibration the bands are
# read with ("demo-atlas": fitted on the demo atlas; "chardon-1991": the published thresholds as
# they are), and the least confidence (percent) at which a measured type labels an image whose
# type is unknown ("estimated from colour").
ATLAS_SKIN_TONE_CALIBRATION = env_str("ATLAS_SKIN_TONE_CALIBRATION", "demo-atlas")
ATLAS_SKIN_TONE_MIN_CONFIDENCE = env_int("ATLAS_SKIN_TONE_MIN_CONFIDENCE_PERCENT", 30, minimum=0) / 100

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Pillow logs EXIF tag values (names, cameras, GPS) at DEBUG while decoding uploads; a
        # searched photo's metadata must never reach a log, whatever LOG_LEVEL says.
        "PIL": {"level": "INFO"},
    },
}

# Daily sweep of stored files no Image refers to (left by an ingestion that died mid-way).
CELERY_BEAT_SCHEDULE["atlas-sweep-orphan-files"] = {
    "task": "atlas.tasks.orphan_files_sweep_task",
    "schedule": 24 * 3600,
    "options": {"queue": "default"},
}

# --- Content credentials (C2PA) --------------------------------------------------------
# Every synthetic file is signed at ingestion and again on export (docs/operations.md). Paths to
# a PEM private key and its certificate chain (signer first); the trust anchors (PEM roots) are
# what `verify_credentials` trusts. By default: the local demo pair under var/c2pa/, which
# ATLAS_C2PA_DEMO_KEYS lets Atlas create and renew. Production requires a real pair.
_C2PA_DEMO = VAR_DIR / "c2pa" / "demo-NOT-FOR-PRODUCTION"
ATLAS_C2PA_KEY_FILE = env_str("ATLAS_C2PA_KEY_FILE", f"{_C2PA_DEMO}.key")
ATLAS_C2PA_CERT_FILE = env_str("ATLAS_C2PA_CERT_FILE", f"{_C2PA_DEMO}.pem")
ATLAS_C2PA_TRUST_ANCHORS_FILE = env_str("ATLAS_C2PA_TRUST_ANCHORS_FILE", f"{_C2PA_DEMO}-ca.pem")
ATLAS_C2PA_DEMO_KEYS = env_bool("ATLAS_C2PA_DEMO_KEYS", True)

# --- Generation (DermGAN) ---------------------------------------------------------------
# Datasets, training runs, checkpoints and evaluation encoders live under GAN_ROOT.
GAN_ROOT = Path(env_str("ATLAS_GAN_ROOT", str(VAR_DIR / "gan")))
# auto = CUDA when present, else CPU; or cpu / cuda / cuda:N.
GAN_DEVICE = env_str("ATLAS_GAN_DEVICE", "auto")
# CPU threads for GAN work, 0 = torch's default (all cores). On a shared machine 1 is often
# several times faster: torch's threads spin-wait for each other when cores are taken.
GAN_THREADS = env_int("ATLAS_GAN_THREADS", 0, minimum=0)
# Generators a process keeps loaded (least recently used dropped first): the active
# checkpoint and the one before it by default. Each holds its weights (GPU memory on CUDA).
GAN_GENERATOR_CACHE_SIZE = env_int("ATLAS_GAN_GENERATOR_CACHE_SIZE", 2, minimum=1)
GAN_CROP_SIZE = env_int("ATLAS_GAN_CROP_SIZE", 128, minimum=32)  # ROI crop window, pixels (the shipped demo model's)
GAN_CROPS_PER_IMAGE = env_int("ATLAS_GAN_CROPS_PER_IMAGE", 2, minimum=1)
# Random windows tried per crop, keeping the most skin-covered (docs/dermgan.md, "crop windows").
GAN_WINDOW_TRIES = env_int("ATLAS_GAN_WINDOW_TRIES", 4, minimum=1)
GAN_HOLDOUT_PERCENT = env_int("ATLAS_GAN_HOLDOUT_PERCENT", 10, minimum=0)  # cases kept for evaluation
# A local Inception-V3 weights file for FID; empty = score with the project's own encoder.
GAN_INCEPTION_WEIGHTS = env_str("ATLAS_GAN_INCEPTION_WEIGHTS", "")
# Gap filling (docs/gap-filling.md): samples per batch (one generator call, one transaction),
# seconds one task works before it hands the job to a new task, and seconds a silent worker
# keeps its claim (lease) on a job. Every 5 minutes beat re-enqueues jobs whose worker died.
GAP_FILL_BATCH_SIZE = env_int("ATLAS_GAP_FILL_BATCH_SIZE", 8, minimum=1)
GAP_FILL_TASK_SECONDS = env_int("ATLAS_GAP_FILL_TASK_SECONDS", 60, minimum=1)
GAP_FILL_LEASE_SECONDS = env_int("ATLAS_GAP_FILL_LEASE_SECONDS", 600, minimum=30)
# Synthetic images start "pending review" and reach public pages, search, the API, quizzes,
# studies and exports only once a reviewer approves them (docs/gap-filling.md, Review). Off
# (a private deployment that trusts its gates) stores them as "no review needed".
ATLAS_SYNTHETIC_REVIEW = env_bool("ATLAS_SYNTHETIC_REVIEW", True)
# Automatic gates on every generated sample before it counts toward its cell (docs/gap-filling.md,
# "Gates"): the gates to run (comma-separated; "none" runs none), a failing sample is dropped and
# redrawn, at most GAP_FILL_DRAWS_PER_IMAGE draws per planned image of a cell. The copy and
# defect defaults are calibrated on real crops (generation/gate_calibration.py says how).
from generation.gate_calibration import COPY_CALIBRATION as _COPY, DEFECT_CALIBRATION as _DEFECT  # noqa: E402

ATLAS_GATES = [g for g in env_list("ATLAS_GATES", ["tone", "condition", "copy", "defects"]) if g != "none"]
GAP_FILL_DRAWS_PER_IMAGE = env_int("ATLAS_GAP_FILL_DRAWS_PER_IMAGE", 4, minimum=1)
ATLAS_GATE_TONE_MAX_DIFFERENCE = env_int("ATLAS_GATE_TONE_MAX_DIFFERENCE", 1, minimum=0)  # types from the request
ATLAS_GATE_CONDITION_TOP_K = env_int("ATLAS_GATE_CONDITION_TOP_K", 3, minimum=1)  # requested condition in the top k
ATLAS_GATE_COPY_MAX_COSINE = env_float("ATLAS_GATE_COPY_MAX_COSINE", _COPY["max_cosine"], minimum=0, maximum=1)
ATLAS_GATE_COPY_MAX_HASH_DISTANCE = env_int("ATLAS_GATE_COPY_MAX_HASH_DISTANCE", _COPY["max_hash_distance"], minimum=0)
ATLAS_GATE_DEFECT_MAX_CAST = env_float("ATLAS_GATE_DEFECT_MAX_CAST", _DEFECT["max_cast"], minimum=0)
ATLAS_GATE_DEFECT_MIN_CONTRAST = env_float("ATLAS_GATE_DEFECT_MIN_CONTRAST", _DEFECT["min_contrast"], minimum=0)
ATLAS_GATE_DEFECT_MAX_FRAME = env_float("ATLAS_GATE_DEFECT_MAX_FRAME", _DEFECT["max_frame"], minimum=0)
ATLAS_GATE_DEFECT_MAX_CHECKER = env_float("ATLAS_GATE_DEFECT_MAX_CHECKER", _DEFECT["max_checker"], minimum=0)
CELERY_BEAT_SCHEDULE["generation-recover-jobs"] = {
    "task": "generation.tasks.generation_jobs_recover_task",
    "schedule": crontab(minute="*/5"),
    "options": {"queue": "generation"},
}

# --- Search -----------------------------------------------------------------------------
# The open_clip model: a config name and its weights (a local checkpoint path, or a hub tag
# already in the local cache; nothing is downloaded). The default is the small model that
# `manage.py train_clip --preset fast` trains on the catalogue (docs/search.md).
SEARCH_CLIP_MODEL = env_str("SEARCH_CLIP_MODEL", "atlas-clip-rn")
SEARCH_CLIP_PRETRAINED = env_str("SEARCH_CLIP_PRETRAINED", str(VAR_DIR / "search" / "clip" / "atlas-clip-rn.pt"))
SEARCH_CLIP_DEVICE = env_str("SEARCH_CLIP_DEVICE", "auto")  # auto = CUDA when present
SEARCH_EMBED_BATCH_SIZE = env_int("SEARCH_EMBED_BATCH_SIZE", 64, minimum=1)
# Torch CPU threads in a process that loads the encoder (0 = torch's default, all cores). One
# query is tiny: with 2 threads on a busy 2-core machine a text query took ~390 ms (threads
# spin-waiting for each other) against ~1 ms with 1 (docs/benchmarks.md, "Web pages").
SEARCH_TORCH_THREADS = env_int("SEARCH_TORCH_THREADS", 1, minimum=0)
SEARCH_INDEX_DIR = Path(env_str("SEARCH_INDEX_DIR", str(VAR_DIR / "search" / "index")))
# What embeds queries in web processes: "onnx" runs the two towers exported beside the
# checkpoint on onnxruntime, so web workers never import torch (docs/scaling.md); "torch" loads
# open_clip as the workers do (the old way, ~1 GB more per web worker). Embedding images for
# the index always uses torch.
SEARCH_QUERY_RUNTIME = env_str("SEARCH_QUERY_RUNTIME", "onnx")
if SEARCH_QUERY_RUNTIME not in {"onnx", "torch"}:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"SEARCH_QUERY_RUNTIME={SEARCH_QUERY_RUNTIME!r}: use onnx or torch")
# onnxruntime threads per web process for one query (0 = all cores); one is fastest when
# every worker answers its own query on a busy machine, as with torch.
SEARCH_ONNX_THREADS = env_int("SEARCH_ONNX_THREADS", 1, minimum=0)
# Exact (Flat) search below this many vectors, IVF above (measured in docs/benchmarks.md).
SEARCH_INDEX_FLAT_MAX = env_int("SEARCH_INDEX_FLAT_MAX", 50_000, minimum=0)
# IVF lists probed per query; 0 = auto (1/16 of the lists, at least 16).
SEARCH_INDEX_NPROBE = env_int("SEARCH_INDEX_NPROBE", 0, minimum=0)
# FAISS threads in processes that answer queries (0 = all cores). One query per call gains
# nothing from threads, and their spin-waiting cost 18 ms per filtered query under load.
SEARCH_FAISS_THREADS = env_int("SEARCH_FAISS_THREADS", 1, minimum=0)
# One index build at a time (PostgreSQL advisory lock, or a file lock on SQLite); a build that
# finds another one running waits this long, then gives up ("another index build is running").
SEARCH_INDEX_BUILD_WAIT_SECONDS = env_int("SEARCH_INDEX_BUILD_WAIT_SECONDS", 900, minimum=0)
SEARCH_MAX_QUERY_CHARS = env_int("SEARCH_MAX_QUERY_CHARS", 500, minimum=1)
SEARCH_MAX_K = env_int("SEARCH_MAX_K", 200, minimum=1)
# Relevance floors (cosine similarity of the best hit): below them a query answers "no confident
# match" and shows the closest images apart. Text and photo scores live on different scales, so
# each has its own; both depend on the model. Calibrated by `bench/calibrate_floor.py` on the
# held-out split (docs/experiments.md, "Relevance floor"); 0 turns a floor off. The defaults are
# the shipped demo model's (atlas-clip-rn@efdc32669aa9, keeping 95% of in-domain queries):
# re-run the calibration whenever the model changes.
SEARCH_FLOOR_TEXT = env_float("SEARCH_FLOOR_TEXT", 0.657, minimum=-1.0, maximum=1.0)
SEARCH_FLOOR_IMAGE = env_float("SEARCH_FLOOR_IMAGE", 0.801, minimum=-1.0, maximum=1.0)
# Freshness: an image that becomes visible is embedded at once (indexing queue) and added to the
# live index by one incremental update this many seconds later; every image made visible in
# between joins that update (debounce). Searchable within delay + build time (~seconds).
SEARCH_FRESH_DELAY_SECONDS = env_int("SEARCH_FRESH_DELAY_SECONDS", 15, minimum=0)
# Distributed reindex (`reindex --distributed`): images per chunk task, and how often a failed
# chunk is tried again (after SEARCH_REINDEX_RETRY_SECONDS) before the job says it failed.
SEARCH_REINDEX_CHUNK_SIZE = env_int("SEARCH_REINDEX_CHUNK_SIZE", 2000, minimum=1)
SEARCH_REINDEX_CHUNK_RETRIES = env_int("SEARCH_REINDEX_CHUNK_RETRIES", 2, minimum=0)
SEARCH_REINDEX_RETRY_SECONDS = env_int("SEARCH_REINDEX_RETRY_SECONDS", 30, minimum=0)
# Nightly incremental reindex (embed what is new, drop what is gone, publish a new version).
# The DatabaseScheduler copies this entry into django-celery-beat's tables, so it shows in
# the admin (Periodic tasks), where staff can change or pause it.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE["search-nightly-reindex"] = {
    "task": "search.tasks.reindex_task",
    "schedule": crontab(
        hour=env_int("SEARCH_REINDEX_HOUR", 3, minimum=0), minute=env_int("SEARCH_REINDEX_MINUTE", 15, minimum=0)
    ),
    "kwargs": {"full": False},
    "options": {"queue": "indexing"},
}

# --- API --------------------------------------------------------------------------------
# REST API under /api/v1/ (docs/api.md). Tokens are created in the admin (API clients).
INSTALLED_APPS += ["corsheaders", "drf_spectacular", "drf_spectacular_sidecar"]
# CORS answers only /api/ and only for the listed platform origins (e.g. https://course.example.org).
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.common.CommonMiddleware"), "corsheaders.middleware.CorsMiddleware")
# JSON errors under /api/ even with DEBUG on (Django's debug pages otherwise).
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.common.CommonMiddleware"), "atlas.api.errors.ApiErrorPagesMiddleware")
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_URLS_REGEX = r"^/api/.*$"
CORS_EXPOSE_HEADERS = ["Retry-After"]
# Throttle counters live in this cache; set API_CACHE_URL (redis://...) when several web
# processes serve the API, else each process counts on its own.
API_CACHE_URL = env_str("API_CACHE_URL", "")
CACHES = globals().get("CACHES") or {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CACHES["api"] = (
    {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": API_CACHE_URL}
    if API_CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "atlas-api"}
)
# Which address an anonymous request counts against (atlas/clients.py): 0 (default) =
# REMOTE_ADDR, X-Forwarded-For ignored (clients can write it); N = behind N reverse proxies
# that each append to X-Forwarded-For; or the proxies' networks, e.g. "10.0.0.0/8,127.0.0.1".
TRUSTED_PROXIES = env_trusted_proxies("TRUSTED_PROXIES")
API_PAGE_SIZE = env_int("API_PAGE_SIZE", 50, minimum=1)
API_MAX_PAGE_SIZE = env_int("API_MAX_PAGE_SIZE", 200, minimum=1)
API_EXPORT_MAX_IMAGES = env_int("API_EXPORT_MAX_IMAGES", 5000, minimum=1)
# Uploads by contributors wait for a curator (is_public off) unless this is on; staff uploads are public.
API_CONTRIBUTOR_UPLOADS_PUBLIC = env_bool("API_CONTRIBUTOR_UPLOADS_PUBLIC", False)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "atlas.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["atlas.api.permissions.ReadOnly"],
    "DEFAULT_THROTTLE_CLASSES": ["atlas.api.throttling.BurstThrottle", "atlas.api.throttling.SustainedThrottle"],
    # Per client (token) or per address (anonymous); "N/s", "N/min", "N/hour", "N/day".
    "DEFAULT_THROTTLE_RATES": {
        "burst": env_str("API_THROTTLE_BURST", "120/min"),
        "sustained": env_str("API_THROTTLE_SUSTAINED", "20000/day"),
        "anon_burst": env_str("API_THROTTLE_ANON_BURST", "30/min"),
        "anon_sustained": env_str("API_THROTTLE_ANON_SUSTAINED", "2000/day"),
        # Searching by photo costs a decode and an embedding: its own, lower rates, one count
        # shared by the API (POST /api/v1/search/) and the web page (/search/photo/).
        # Anonymous photo search is allowed, at the anon_photo rate per address.
        "photo": env_str("API_THROTTLE_PHOTO", "60/min"),
        "anon_photo": env_str("API_THROTTLE_ANON_PHOTO", "10/min"),
        # Web sign-in (also the admin's) and sign-up attempts per address, successful or not:
        # enough for people, too few for password guessing or scripted account floods.
        "sign_in": env_str("THROTTLE_SIGN_IN", "10/min"),
        "sign_up": env_str("THROTTLE_SIGN_UP", "5/hour"),
    },
    # orjson, writing what DRF's JSONRenderer writes (atlas/api/renderers.py).
    "DEFAULT_RENDERER_CLASSES": ["atlas.api.renderers.OrjsonRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "atlas.api.schema.AtlasAutoSchema",
    "EXCEPTION_HANDLER": "atlas.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Atlas API",
    "DESCRIPTION": "Clinical skin images across every skin tone: images, licences, search, coverage, exports.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc from drf-spectacular-sidecar's static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"FitzpatrickTypeEnum": "atlas.skin.FITZPATRICK_CHOICES",
                            "SkinTypeFilterEnum": "atlas.filters.SKIN_TYPE_VALUES",
                            "DeckIgnoredReasonEnum": "atlas.decks.IGNORED_REASONS"},
}

# --- Operations -------------------------------------------------------------------------
# docs/operations.md: storage, index distribution, health, metrics, logs, backups.
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

INSTALLED_APPS += ["atlas.ops"]
MIDDLEWARE.insert(0, "atlas.metrics.RequestMetricsMiddleware")  # first in, last out: whole request timed
MIDDLEWARE.append("atlas.ops.middleware.OutageMiddleware")  # database down: 503; disk full: 507

# Files (images, thumbnails, published index versions) go through Django's storage API.
# STORAGE_BACKEND=local (default: MEDIA_ROOT) or s3 (any S3-compatible object store).
STORAGE_BACKEND = env_str("STORAGE_BACKEND", "local")
if STORAGE_BACKEND == "s3":
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,  # e.g. MinIO, Ceph, moto
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "access_key": env_secret("AWS_ACCESS_KEY_ID") or None,  # else boto3's own chain (instance role)
            "secret_key": env_secret("AWS_SECRET_ACCESS_KEY") or None,
            "location": env_str("AWS_LOCATION", ""),  # key prefix inside the bucket
            "default_acl": None,  # the bucket's policy decides; images are served through signed URLs
            "querystring_auth": True,
            "querystring_expire": env_int("AWS_QUERYSTRING_EXPIRE", 3600, minimum=60),
            "file_overwrite": False,  # never replace an object another row points at
        },
    }
    if not STORAGES["default"]["OPTIONS"]["bucket_name"]:
        raise ImproperlyConfigured("STORAGE_BACKEND=s3 needs AWS_STORAGE_BUCKET_NAME")
elif STORAGE_BACKEND == "local":
    # Django's, but a save that fails half-way (disk full) leaves no partial file.
    STORAGES["default"] = {"BACKEND": "atlas.ops.storage.FileSystemStorage"}
else:
    raise ImproperlyConfigured(f"STORAGE_BACKEND={STORAGE_BACKEND!r}: use local or s3")

# Hidden images' files live under the storage prefix private/ (atlas/services/image_files.py),
# which the web server or bucket must never serve publicly; /images/<id>/file/ and
# /images/<id>/thumbnail/ hand them to staff. With S3: a redirect to a presigned URL valid for
# PRIVATE_MEDIA_URL_SECONDS. With local files, PRIVATE_MEDIA_SERVE decides: django (streamed by
# the app), x-accel (nginx: X-Accel-Redirect to PRIVATE_MEDIA_ACCEL_URL, an internal location
# over MEDIA_ROOT/private/) or x-sendfile (Apache, lighttpd: the file's path).
PRIVATE_MEDIA_SERVE = env_str("PRIVATE_MEDIA_SERVE", "django")
if PRIVATE_MEDIA_SERVE not in ("django", "x-accel", "x-sendfile"):
    raise ImproperlyConfigured(f"PRIVATE_MEDIA_SERVE={PRIVATE_MEDIA_SERVE!r}: use django, x-accel or x-sendfile")
PRIVATE_MEDIA_ACCEL_URL = env_str("PRIVATE_MEDIA_ACCEL_URL", "/media/private/")
PRIVATE_MEDIA_URL_SECONDS = env_int("PRIVATE_MEDIA_URL_SECONDS", 60, minimum=1)

# Index distribution: the worker that builds an index also uploads it to storage under this
# prefix; each web process downloads the newest complete version at most every N seconds.
# On by default with shared (S3) storage; with local files the web and the worker share
# SEARCH_INDEX_DIR on one host and nothing needs copying.
SEARCH_INDEX_PUBLISH = env_bool("SEARCH_INDEX_PUBLISH", STORAGE_BACKEND == "s3")
SEARCH_INDEX_STORAGE_PREFIX = env_str("SEARCH_INDEX_STORAGE_PREFIX", "search-index")
SEARCH_INDEX_SYNC_SECONDS = env_int("SEARCH_INDEX_SYNC_SECONDS", 30, minimum=1)

# Health (/health/): each worker queue answers a heartbeat task sent by beat; a queue whose
# last heartbeat is older than HEALTH_WORKER_MAX_AGE has no live worker.
HEALTH_QUEUES = env_list("HEALTH_QUEUES", ["default", "indexing", "generation"])
HEALTH_HEARTBEAT_SECONDS = env_int("HEALTH_HEARTBEAT_SECONDS", 60, minimum=5)
HEALTH_WORKER_MAX_AGE = env_int("HEALTH_WORKER_MAX_AGE", 300, minimum=10)
HEALTH_INDEX_MAX_AGE_HOURS = env_int("HEALTH_INDEX_MAX_AGE_HOURS", 0, minimum=0)  # 0 = age reported, never failing
HEALTH_BROKER_TIMEOUT = float(env_int("HEALTH_BROKER_TIMEOUT_MS", 1000, minimum=50)) / 1000
for _queue in HEALTH_QUEUES:
    CELERY_BEAT_SCHEDULE[f"ops-heartbeat-{_queue}"] = {
        "task": "atlas.ops.tasks.heartbeat_task",
        "schedule": HEALTH_HEARTBEAT_SECONDS,
        "args": [_queue],
        # A heartbeat nobody took in time is worthless: drop it instead of piling them up.
        "options": {"queue": _queue, "expires": HEALTH_HEARTBEAT_SECONDS},
    }
# Jobs whose message was lost while the broker was down are re-enqueued by the Generation
# section's "generation-recover-jobs" beat entry (every 5 minutes).

# /metrics (Prometheus text format). Empty token: open (bind it to an internal network);
# else scrapers send "Authorization: Bearer <token>".
METRICS_TOKEN = env_secret("METRICS_TOKEN", "")

# LOG_FORMAT=json: one JSON object per line (for Loki, Elasticsearch, CloudWatch ...).
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT == "json":
    LOGGING["formatters"]["json"] = {"()": "atlas.ops.logs.JsonFormatter"}
    LOGGING["handlers"]["console"]["formatter"] = "json"
elif LOG_FORMAT != "plain":
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use plain or json")
LOGGING["loggers"]["faiss.loader"] = {"level": "WARNING"}  # which SIMD build loaded, at every start
