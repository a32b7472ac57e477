"""Platform settings, read from the environment; nothing needs setting for the embedded default."""

import os
import tempfile
import warnings
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# `make run` writes .env (DEBUG=1 and a generated SECRET_KEY), so manage.py in another terminal works alike;
# the environment wins over the file.
environ.Env.read_env(os.environ.get("ENV_FILE", BASE_DIR / ".env"), overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "development-only-secret-key-not-for-production"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "coupons",
    "webhooks",
    "audit",
]

MIDDLEWARE = [
    # Outermost: every response, probes and errors included, carries X-Request-ID.
    "config.request_id.RequestIdMiddleware",
    # Then probes answer whatever the Host header, scheme or session state.
    "config.health.HealthCheckMiddleware",
    # After the probes (their traffic is noise), before everything that may answer on its own.
    "config.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (admin, API docs) served by every web process: no proxy rule needed under gunicorn.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before CommonMiddleware: API paths answer JSON errors, never an HTML page or a slash redirect.
    "coupons.api.errors.ApiErrorMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

# Database: SQLite in the project folder unless DATABASE_URL names another.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
IS_SQLITE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
if IS_SQLITE:
    # WAL lets readers and one writer work at once; IMMEDIATE takes the write lock at BEGIN
    # so concurrent writers queue on the timeout instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # The test database is a file (so a qcluster subprocess can share it), one per test run:
    # the name is put in the environment so the run's subprocesses inherit the same one.
    os.environ.setdefault(
        "TEST_SQLITE_NAME", str(Path(tempfile.gettempdir()) / f"coupons-test-{os.getpid()}.sqlite3")
    )
    DATABASES["default"].setdefault("TEST", {})["NAME"] = os.environ["TEST_SQLITE_NAME"]
else:
    # An unreachable database must fail a request (and /readyz) in seconds, not hang a worker.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options.setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=5))
    # Parameters travel apart from the SQL, so psycopg prepares a statement a connection runs again
    # and again (the hot paths): PostgreSQL then skips parsing and planning it on every request.
    # Django leaves preparing off (for transaction-mode PgBouncer); set DB_PREPARE_THRESHOLD to empty there.
    options.setdefault("server_side_binding", True)
    prepare_threshold = env.str("DB_PREPARE_THRESHOLD", default="5").strip()
    options.setdefault("prepare_threshold", int(prepare_threshold) if prepare_threshold else None)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")

# A cache every process shares: throttling counters and the django-q2 monitor need it.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "config.cache.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "platform_cache"}
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# Without `collectstatic` (make run, tests) WhiteNoise finds files in the apps; deployments collect them.
WHITENOISE_USE_FINDERS = True
# Production serves hashed, compressed copies (cached forever by browsers); that needs `collectstatic`
# (the Dockerfile and the release step run it). STATIC_MANIFEST=0 serves the plain files without it.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env.bool("STATIC_MANIFEST", default=not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# WhiteNoise warns (from wherever its middleware is built) that STATIC_ROOT is missing until collectstatic runs.
warnings.filterwarnings("ignore", message="No directory at")

# Sessions (the admin's, and the reveal page's anonymous shoppers'): in the shared cache and the database
# when Redis is there, so a page load reads no session row; expired ones are cleared by a schedule.
SESSION_ENGINE = (
    "django.contrib.sessions.backends.cached_db" if REDIS_URL else "django.contrib.sessions.backends.db"
)

# Production behind HTTPS: all on when DEBUG is off, each settable (0/1) for a deployment that differs.
# SECURE_PROXY_SSL_HEADER trusts X-Forwarded-Proto: only behind a proxy that sets it and strips clients' own.
HTTPS = not DEBUG
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=HTTPS)
# Probes and Prometheus call over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=HTTPS)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=HTTPS)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
# Preloading is a promise about the whole domain made by its owner (hstspreload.org), not a default.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if not SECURE_HSTS_PRELOAD:
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
if env.bool("SECURE_PROXY_SSL_HEADER", default=HTTPS):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# One logging configuration for the web processes, the cluster and gunicorn: readable lines by default,
# one JSON object a line with LOG_FORMAT=json; every record carries the request id.
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = logging_config(fmt=LOG_FORMAT, level=LOG_LEVEL)

# Metrics (GET /metrics, Prometheus text): refused without `Authorization: Bearer <METRICS_TOKEN>`, off when
# unset. Each process writes its counters to files in PROMETHEUS_MULTIPROC_DIR, which must be set before
# prometheus_client is imported: all the processes of a host (gunicorn workers, clusters) should share one.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", str(Path(tempfile.gettempdir()) / f"coupons-metrics-{os.getpid()}")
)

# REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["coupons.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["coupons.api.auth.HasApiKey"],
    "DEFAULT_PAGINATION_CLASS": "coupons.api.pagination.PagePagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "coupons.api.schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "coupons.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["coupons.api.parsers.SafeJSONParser"],
    "UNAUTHENTICATED_USER": None,
    # Proxies in front of the web servers whose X-Forwarded-For is trusted to name the client;
    # 0 takes REMOTE_ADDR, so a client cannot dodge per-address limits with a forged header.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Coupon & webhook platform API",
    "DESCRIPTION": "Issue, query, validate, redeem and roll back coupon codes; manage webhook subscriptions.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page's assets come from the installed drf-spectacular-sidecar, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "CouponStatusEnum": "coupons.models.CouponStatus",
        "CouponTypeEnum": "coupons.models.CouponType",
        "MysteryDiscountTypeEnum": ["fixedAmount", "percentage", "freeShipping"],
    },
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)
CSV_IMPORT_MAX_BYTES = env.int("CSV_IMPORT_MAX_BYTES", default=50 * 1024 * 1024)
UNKNOWN_CODE_LIMIT_PER_MINUTE = env.int("UNKNOWN_CODE_LIMIT_PER_MINUTE", default=60)
# Public reveal pages, per client address: page loads, and reveals (each may hand out a code).
PUBLIC_PAGES_PER_MINUTE = env.int("PUBLIC_PAGES_PER_MINUTE", default=120)
PUBLIC_REVEALS_PER_MINUTE = env.int("PUBLIC_REVEALS_PER_MINUTE", default=20)
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
# Each web process remembers a key it has checked for this long, so the hot path spends no query on it;
# a revocation or scope change made elsewhere takes effect within this time (0: at once, a query a request).
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=5.0)

# Coupon generation
CODES_IN_REQUEST_MAX = env.int("CODES_IN_REQUEST_MAX", default=1000)
JOB_CHUNK_SIZE = env.int("JOB_CHUNK_SIZE", default=10000)
JOB_MAX_CODES = env.int("JOB_MAX_CODES", default=10_000_000)
# A job whose heartbeat is older than this is re-enqueued by the stale-job sweep (runners share work safely).
JOB_STALE_SECONDS = env.int("JOB_STALE_SECONDS", default=120)
# CSV imports up to this size (bytes and rows) run in the request; larger ones run as a job.
CSV_IMPORT_INLINE_MAX_BYTES = env.int("CSV_IMPORT_INLINE_MAX_BYTES", default=1024 * 1024)
CSV_IMPORT_INLINE_MAX_ROWS = env.int("CSV_IMPORT_INLINE_MAX_ROWS", default=20000)

# Webhooks
WEBHOOKS_ALLOW_PRIVATE_URLS = env.bool("WEBHOOKS_ALLOW_PRIVATE_URLS", default=DEBUG)
WEBHOOKS_RETENTION_DAYS = env.int("WEBHOOKS_RETENTION_DAYS", default=30)
WEBHOOKS_USER_AGENT = "CouponHub-Webhooks/1.0"
# Requests a dispatcher has in flight at once, across all subscriptions, and to one subscription.
WEBHOOKS_SEND_CONCURRENCY = env.int("WEBHOOKS_SEND_CONCURRENCY", default=64)
WEBHOOKS_MAX_IN_FLIGHT_PER_SUBSCRIPTION = env.int("WEBHOOKS_MAX_IN_FLIGHT_PER_SUBSCRIPTION", default=4)
# Failed attempts in a row that pause a subscription (circuit breaker) until a probe succeeds.
WEBHOOKS_CIRCUIT_FAILURES = env.int("WEBHOOKS_CIRCUIT_FAILURES", default=10)
# Dispatchers sending at once across every cluster; each lives for a run and hands over to the next.
WEBHOOKS_DISPATCHERS = env.int("WEBHOOKS_DISPATCHERS", default=1)
WEBHOOKS_DISPATCHER_RUN_SECONDS = env.float("WEBHOOKS_DISPATCHER_RUN_SECONDS", default=50.0)
# A dispatcher's lease on its slot and its subscriptions: a killed one is replaced after this.
WEBHOOKS_LEASE_SECONDS = env.float("WEBHOOKS_LEASE_SECONDS", default=10.0)
# How often a dispatcher on SQLite looks for new deliveries (PostgreSQL tells it on commit instead).
WEBHOOKS_POLL_SECONDS = env.float("WEBHOOKS_POLL_SECONDS", default=0.05)
# Seconds to connect, and for the whole request (connect, send, answer) before it counts as timed out.
WEBHOOKS_CONNECT_TIMEOUT = env.float("WEBHOOKS_CONNECT_TIMEOUT", default=5.0)
WEBHOOKS_TOTAL_TIMEOUT = env.float("WEBHOOKS_TOTAL_TIMEOUT", default=15.0)
# How long a process may reuse its list of active subscriptions before reading it again.
WEBHOOKS_ROUTE_CACHE_SECONDS = env.float("WEBHOOKS_ROUTE_CACHE_SECONDS", default=2.0)
# A subscription whose deliveries have all failed for this many days is disabled.
WEBHOOKS_AUTO_DISABLE_DAYS = env.int("WEBHOOKS_AUTO_DISABLE_DAYS", default=5)

# django-q2: our tables hold the truth (deliveries, job chunks), the broker is only a doorbell.
# Tasks own their retries, so the broker never re-runs them (max_attempts 1, ack_failures).
Q_CLUSTER = {
    "name": "platform",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": 120,
    "retry": 300,
    "max_attempts": 1,
    "ack_failures": True,
    "save_limit": -1,
    "queue_limit": 4,
    "catch_up": False,
    "poll": 0.1,
    "label": "Task queue",
    "ALT_CLUSTERS": {
        "bulk": {"timeout": 3600, "retry": 4000, "workers": env.int("Q_BULK_WORKERS", default=2)},
    },
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
# Tests and benchmarks can run tasks inline.
Q_CLUSTER["sync"] = env.bool("Q_SYNC", default=False)
