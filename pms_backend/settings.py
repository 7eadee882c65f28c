"""Settings for PMS backend.

Every value comes from the environment (each variable is described in README.md or
docs/deployment.md). With nothing set the project runs on embedded defaults: a SQLite
file, the local-memory cache, the in-memory channel layer and Celery on kombu's
file-system transport. ``DJANGO_DEBUG=false`` is
production: it refuses to start without a strong secret key.
"""

import hashlib
import ipaddress
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from pms_backend.monitoring.log_config import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A local .env (written by scripts/dev.sh) fills in what the real environment leaves unset.
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"))

DEBUG = env.bool("DJANGO_DEBUG", default=False)

_DEV_SECRET_KEY = "django-insecure-dev-only-key-never-use-in-production"  # noqa: S105
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or (_DEV_SECRET_KEY if DEBUG else "")


def _is_weak_secret(value: str) -> bool:
    # The same bar as Django's security.W009 check.
    return len(value) < 50 or len(set(value)) < 5 or value.startswith("django-insecure-")


if not DEBUG and _is_weak_secret(SECRET_KEY):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is missing or weak (need >= 50 characters, >= 5 distinct, "
        "not 'django-insecure-…'). Set it, or DJANGO_DEBUG=true for local development."
    )

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else []
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "channels",
    "corsheaders",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_fsm",
    "import_export",
    "pms_backend.monitoring",
    "pms_backend.apikeys",
    "pms_backend.events",
    "audit",
    "catalog",
    "inventory",
    "orders",
    "pms_backend.idempotency",
    "pms_backend.encryption",
    "pms_backend.staff",
    "pms_backend.outbound",
    "webhooks",
    "pms_backend.shopsettings",
]

MIDDLEWARE = [
    "pms_backend.monitoring.middleware.RequestIdMiddleware",
    "pms_backend.monitoring.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "pms_backend.api.guard.ApiGuardMiddleware",
    *(["pms_backend.api.debug_not_found.ApiNotFoundInDebugMiddleware"] if DEBUG else []),
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.http.ConditionalGetMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "audit.context.RequestActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "pms_backend.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "pms_backend" / "templates"],
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

WSGI_APPLICATION = "pms_backend.wsgi.application"
ASGI_APPLICATION = "pms_backend.asgi.application"

# --- Database -------------------------------------------------------------------------

DATABASES = {
    # An empty DATABASE_URL means "not set": the embedded SQLite file.
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    ),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    if env.bool("DATABASE_POOL", default=True):
        # Under ASGI every request runs in a thread of its own, so persistent per-thread
        # connections pile up until PostgreSQL refuses more ("too many clients"), and
        # without them each request pays for a new connection. A per-process pool
        # (psycopg_pool) is Django's answer; requests wait for a free connection.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": 2,
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=10),
            "timeout": 10,
        }
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
else:
    # SQLite: wait for a writer instead of failing at once; dev server and worker share it.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
DATABASE_BACKEND = "postgresql" if "postgresql" in DATABASES["default"]["ENGINE"] else "sqlite"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, Celery broker, channel layer ----------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")
# Redis answers a connect in a millisecond on a LAN; a Redis that does not answer must not
# hold up a request (raise it for a distant managed Redis behind TLS).
REDIS_CONNECT_TIMEOUT = env.float("PMS_REDIS_CONNECT_TIMEOUT", default=0.25)


def channel_prefix(redis_url: str, secret_key: str, database_name: str) -> str:
    """Return this deployment's channel-layer prefix: ``pms:<redis db>:<16 hex>:``.

    Redis pub/sub ignores database numbers, so a fixed prefix let every deployment on one
    Redis server hear every other's events (orders with customer data among them). The
    hash of the secret key and the database name tells deployments apart; every process
    of one deployment shares both, so they still hear each other.
    """
    parts = urlsplit(redis_url)
    db = parts.path.strip("/") if parts.scheme in ("redis", "rediss") else ""
    db = parse_qs(parts.query).get("db", [db])[0] or "0"
    digest = hashlib.sha256(f"pms-channels\0{secret_key}\0{database_name}".encode())
    return f"pms:{db}:{digest.hexdigest()[:16]}:"


# Pin it (the same value in every process of the deployment) to keep it across a change
# of secret key or database name.
PMS_CHANNEL_PREFIX = env.str("PMS_CHANNEL_PREFIX", default="") or channel_prefix(
    REDIS_URL, SECRET_KEY, str(DATABASES["default"].get("NAME", ""))
)

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "pms",
            "OPTIONS": {
                # A Redis outage degrades to cache misses, never to a 500; after a failure
                # this process skips Redis for a few seconds instead of paying a connect
                # attempt per call (pms_backend/monitoring/redis_outage.py).
                "CLIENT_CLASS": "pms_backend.monitoring.redis_cache.PausingClient",
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": REDIS_CONNECT_TIMEOUT,
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }
    # Logged, and turned by the logging filter into one outage line a minute per process.
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
    DJANGO_REDIS_LOGGER = "django_redis.cache"
    # Redis pub/sub: a group message is published once and each server process hands it
    # to its own subscribers. channels-redis's list-based layer queued a copy per member
    # and popped each with its own round trip (200 subscribers: 200 per event); that cost
    # 20 ms of server CPU per event in scripts/bench.sh events. Websocket events are best
    # effort either way (a client that missed some resubscribes with "since").
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            # The connect timeout bounds a subscribe or a broadcast while Redis is down
            # (redis-py's asyncio connections wait for the OS otherwise: minutes).
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_connect_timeout": REDIS_CONNECT_TIMEOUT}],
                "prefix": PMS_CHANNEL_PREFIX,
            },
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CACHE_BACKEND_NAME = "redis"
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "pms",
        }
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "filesystem://"
    CACHE_BACKEND_NAME = "local-memory"

# --- Celery ---------------------------------------------------------------------------

CELERY_BROKER_DIR = Path(env.str("CELERY_BROKER_DIR", default=str(VAR_DIR / "broker")))
if not REDIS_URL:
    # kombu's file-system transport needs its folders to exist before a worker polls them.
    for _folder in ("queue", "control"):
        (CELERY_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
    # The same transport, but a message file appears only once it is completely written.
    CELERY_BROKER_TRANSPORT = "pms_backend.filesystem_broker:Transport"
else:
    # Retries are scheduled in the database, so no countdown ever outlives this timeout.
    # With Redis down, queueing fails at once and the outbox sweep takes over: one connect
    # attempt with a short timeout ("max_retries": 0; kombu otherwise retries an implicit
    # connect for broker_connection_timeout, 2 + 4 s, on every publish after commit). The
    # worker's own consumer connection keeps Celery's retry settings.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 3600,
        "max_retries": 0,
        "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
        "socket_timeout": 2,
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SOFT_TIME_LIMIT = 120
CELERY_TASK_TIME_LIMIT = 150
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes every database connection before and after each task unless
# this is set: each task paid for a new PostgreSQL connection (5 ms of worker CPU plus a
# backend fork; half the worker's CPU in scripts/bench.sh events). Connections are kept
# for this many tasks; between tasks Django's own rules (CONN_MAX_AGE, health checks)
# drop stale ones (pms_backend/celery.py).
CELERY_DB_REUSE_MAX = 1000
CELERY_TIMEZONE = "UTC"
# Three queues, so a deployment can give each its own workers (docs/deployment.md): "events"
# (outbox dispatch: feeds websockets and creates deliveries; latency matters), "webhooks"
# (sending to receivers, which may be slow) and "celery" (periodic jobs). A worker started
# without -Q consumes all three.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name), routing_key=name) for name in ("events", "webhooks", "celery")
]
CELERY_TASK_ROUTES = {
    "events.dispatch": {"queue": "events"},
    "webhooks.deliver": {"queue": "webhooks"},
    "webhooks.deliver_batch": {"queue": "webhooks"},
}
CELERY_BEAT_SCHEDULE = {
    "expire-reservations": {"task": "orders.expire_reservations", "schedule": 60.0},
    "check-inventory": {"task": "inventory.check_integrity", "schedule": 3600.0},
    "prune-idempotency-keys": {"task": "idempotency.prune", "schedule": 3600.0},
    "seal-audit-log": {"task": "audit.seal", "schedule": 30.0},
    "sweep-outbox": {"task": "events.sweep", "schedule": 5.0},
    "deliver-due-webhooks": {"task": "webhooks.deliver_due", "schedule": 5.0},
    "prune-events": {"task": "events.prune", "schedule": 86400.0},
    "collect-metrics": {"task": "monitoring.collect_metrics", "schedule": 3600.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = env.str(
    "PMS_BEAT_SCHEDULE_FILE", default=str(VAR_DIR / "celerybeat-schedule")
)

# --- Auth, i18n, static ---------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# The ASGI server serves the admin's and the API docs' static files itself (WhiteNoise).
WHITENOISE_USE_FINDERS = DEBUG

DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("PMS_MAX_BODY_BYTES", default=1024 * 1024)

# --- Admin login throttling (django-axes) ---------------------------------------------

# Axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Failed logins are counted in the cache (Redis, like the API's rate-limit counters), per
# username and, separately, per client address; either one past the limit locks out.
# Without Redis (the embedded defaults) each process counts its own, as the API limits do.
AXES_HANDLER = "pms_backend.staff.lockout.LockoutCacheHandler"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = env.int("PMS_ADMIN_LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("PMS_ADMIN_LOGIN_COOLOFF_MINUTES", default=15))
# The lockout lasts the cool-off from the failure that tripped it; attempts meanwhile are
# not counted (they would only push the end further out) and none is checked.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "admin/login_locked_out.html"
AXES_LOCKOUT_CALLABLE = "pms_backend.staff.lockout.lockout_response"
# The address as the API's limits see it (REMOTE_ADDR, which the server rewrites only for
# proxies in FORWARDED_ALLOW_IPS): X-Forwarded-For from anyone else must not dodge a lockout.
AXES_CLIENT_IP_CALLABLE = "pms_backend.api.guard.client_ip"
AXES_ENABLE_ADMIN = False  # nothing in the database to show (the cache handler)
AXES_VERBOSE = False

# --- Security ------------------------------------------------------------------------

CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_EXPOSE_HEADERS = [
    "ETag",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Retry-After",
    "X-Request-ID",
]
CORS_ALLOW_HEADERS = [
    "accept",
    "authorization",
    "content-type",
    "idempotency-key",
    "if-none-match",
    "x-api-key",
    "x-request-id",
]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- REST framework ------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "pms_backend.api.authentication.ApiKeyAuthentication",
        "pms_backend.api.authentication.StaffSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["pms_backend.api.permissions.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["pms_backend.api.parsers.StrictJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["pms_backend.api.throttles.CredentialRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "pms_backend.api.pagination.BoundedPageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["pms_backend.api.filters.FilterBackend"],
    "EXCEPTION_HANDLER": "pms_backend.api.problems.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "COERCE_DECIMAL_TO_STRING": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "PMS backend API",
    "DESCRIPTION": (
        "Catalog, stock and orders for a shop. Authenticate with "
        "`Authorization: Api-Key <key>`; errors are RFC 9457 problem+json."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Served from our own static files: the docs work offline, no CDN.
    # One name per status machine, however many fields show it.
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "orders.models.Order.Status",
        "ProductStatusEnum": "catalog.models.Product.Status",
        "DeliveryStatusEnum": "webhooks.models.WebhookDelivery.Status",
        "FulfillmentStatusEnum": "orders.models.Fulfillment.Status",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Errors as they leave: problem+json, with the 400/401/403/404/429 every call may get.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "pms_backend.api.schema.problem_responses",
    ],
}

# --- PMS ------------------------------------------------------------------------------

# Field encryption: comma-separated base64 32-byte keys, newest first. Development
# without keys derives one from the secret key; production refuses to start without.
PMS_ENCRYPTION_KEYS = env.str("PMS_ENCRYPTION_KEYS", default="")
if not PMS_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "PMS_ENCRYPTION_KEYS is required in production: comma-separated standard base64 "
            'of 32 random bytes each, newest first (python -c "import os,base64;'
            'print(base64.b64encode(os.urandom(32)).decode())").'
        )
    import base64

    PMS_ENCRYPTION_KEYS = base64.b64encode(
        hashlib.sha256(b"pms-dev-encryption:" + SECRET_KEY.encode()).digest()
    ).decode()
# Keys the blind indexes (search by customer e-mail); keep it when rotating other secrets.
PMS_BLIND_INDEX_SECRET = env.str("PMS_BLIND_INDEX_KEY", default="") or SECRET_KEY
# Keys the audit log's hash chain (HMAC-SHA256), so that whoever can write the tables
# cannot compute a chain that verifies. It lives outside the database and never changes
# (a different key fails every link). Development without it derives one from the secret
# key; production refuses to start without it.
PMS_AUDIT_CHAIN_KEY = env.str("PMS_AUDIT_CHAIN_KEY", default="")
if not PMS_AUDIT_CHAIN_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "PMS_AUDIT_CHAIN_KEY is required in production: at least 32 random characters, "
            'kept outside the database and never changed (python -c "import secrets;'
            'print(secrets.token_urlsafe(32))").'
        )
    import hashlib

    PMS_AUDIT_CHAIN_KEY = hashlib.sha256(b"pms-dev-audit-chain:" + SECRET_KEY.encode()).hexdigest()
elif len(PMS_AUDIT_CHAIN_KEY) < 32:
    raise ImproperlyConfigured("PMS_AUDIT_CHAIN_KEY is too short: use at least 32 characters.")

# --- Event delivery --------------------------------------------------------------------
PMS_WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.bool("PMS_WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=False)
PMS_WEBHOOK_TIMEOUT_SECONDS = env.float("PMS_WEBHOOK_TIMEOUT_SECONDS", default=15.0)
# Seconds after each failed attempt (docs/api.md, Webhooks: 5 s, 5 min, 30 min, 2 h, 5 h,
# 10 h, 14 h, 20 h, 24 h). Tests and drills may shorten it.
PMS_WEBHOOK_RETRY_SCHEDULE = [
    int(x)
    for x in env.list(
        "PMS_WEBHOOK_RETRY_SCHEDULE",
        default=["5", "300", "1800", "7200", "18000", "36000", "50400", "72000", "86400"],
    )
]
PMS_WEBHOOK_DISABLE_AFTER_DAYS = 5
PMS_CIRCUIT_FAILURES = env.int("PMS_CIRCUIT_FAILURES", default=5)
PMS_CIRCUIT_OPEN_SECONDS = env.int("PMS_CIRCUIT_OPEN_SECONDS", default=30)
# Worker processes sending to one webhook endpoint at the same time: a slow or hanging
# receiver holds this many of them at most, the others serve the other endpoints. With 1,
# one process (about 20 ms of CPU per delivery) capped a busy endpoint below 50 events/s
# (scripts/bench.sh events: p50 16 s). Default: half the worker's processes (1 of the
# default 2, 2 of the recommended 4), so a hanging receiver leaves the others free.
PMS_WEBHOOK_ENDPOINT_CONCURRENCY = env.int(
    "PMS_WEBHOOK_ENDPOINT_CONCURRENCY",
    default=max(1, env.int("WORKER_CONCURRENCY", default=2) // 2),
)
# An event not dispatched this long after it was written is picked up by the sweep.
PMS_OUTBOX_SWEEP_AFTER_SECONDS = 3
PMS_EVENT_RETENTION_DAYS = env.int("PMS_EVENT_RETENTION_DAYS", default=30)

PMS_DEFAULT_CURRENCY = env.str("PMS_DEFAULT_CURRENCY", default="EUR")
PMS_CATALOG_CACHE_SECONDS = env.int("PMS_CATALOG_CACHE_SECONDS", default=300)
PMS_API_KEY_CACHE_SECONDS = env.int("PMS_API_KEY_CACHE_SECONDS", default=60)
PMS_MAX_PAGE_SIZE = 100
PMS_RATE_LIMITS_ENABLED = env.bool("PMS_RATE_LIMITS_ENABLED", default=True)
PMS_RATE_LIMITS = {
    # Every API request from one client address.
    "ip": env.str("PMS_RATE_LIMIT_IP", default="1200/minute"),
    # Every request made with one API key (or staff session).
    "key": env.str("PMS_RATE_LIMIT_KEY", default="6000/minute"),
    # Order placements per key: a storefront must not be able to hoard stock.
    "orders": env.str("PMS_RATE_LIMIT_ORDERS", default="120/minute"),
    # Failed authentications per client address (key guessing).
    "auth_failures": env.str("PMS_RATE_LIMIT_AUTH_FAILURES", default="20/10m"),
}
# Websockets. The ASGI server refuses (close 1009) a message larger than this from its
# frame header, before reading it (uvicorn's ws_max_size; its default, 16 MiB, was read
# into memory first); the consumer's own limit for a message is 4 KiB.
WEBSOCKET_MAX_MESSAGE_BYTES = env.int("PMS_WEBSOCKET_MAX_MESSAGE_BYTES", default=5 * 1024)


def _seconds(name: str, default: float, *, most: float) -> float:
    """A duration from the environment: more than 0 and at most ``most`` seconds, else the
    server refuses to start (0 or less, "nan" or "inf" would close every socket at once or
    never: a bound that protects the server, gone)."""
    raw = env.str(name, default="").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = float("nan")
    if not 0 < value <= most:  # False for nan
        raise ImproperlyConfigured(f"{name} must be more than 0 and at most {most:g} seconds.")
    return value


# How long a socket may wait for its ``auth`` message before it is closed with 4401.
PMS_WEBSOCKET_AUTH_TIMEOUT_SECONDS = _seconds(
    "PMS_WEBSOCKET_AUTH_TIMEOUT_SECONDS", default=5.0, most=60
)
# Sockets from one address still waiting to authenticate, per server process.
PMS_WEBSOCKET_UNAUTHENTICATED_PER_ADDRESS = env.int(
    "PMS_WEBSOCKET_UNAUTHENTICATED_PER_ADDRESS", default=10
)
# How often each server process asks the database whether its sockets' keys were revoked
# or have expired (it then closes their sockets): one query per process and interval.
PMS_WEBSOCKET_KEY_CHECK_SECONDS = _seconds("PMS_WEBSOCKET_KEY_CHECK_SECONDS", default=2.0, most=60)
PMS_LOW_STOCK_THRESHOLD = env.int("PMS_LOW_STOCK_THRESHOLD", default=5)
# CSV imports: the command refuses larger files before reading them; the admin, which
# holds an upload in memory and previews it, takes less.
PMS_IMPORT_MAX_BYTES = env.int("PMS_IMPORT_MAX_BYTES", default=200 * 1024 * 1024)
PMS_ADMIN_IMPORT_MAX_BYTES = env.int("PMS_ADMIN_IMPORT_MAX_BYTES", default=20 * 1024 * 1024)
PMS_RESERVATION_MINUTES = env.int("PMS_RESERVATION_MINUTES", default=30)
PMS_ORDER_MAX_LINES = 100
PMS_ORDER_MAX_QUANTITY = env.int("PMS_ORDER_MAX_QUANTITY", default=1000)
PMS_IDEMPOTENCY_HOURS = 24

# --- Logging -------------------------------------------------------------------------

# JSON lines in production (PMS_LOG_FORMAT=plain to opt out), plain text in development;
# every line of a request carries its id (X-Request-ID).
LOGGING = logging_config(
    json_lines=env.str("PMS_LOG_FORMAT", default="plain" if DEBUG else "json") == "json",
    level=env.str("LOG_LEVEL", default="INFO"),
)

# /metrics: scrapers from these networks, or any caller with "Authorization: Bearer <token>".
PMS_METRICS_TOKEN = env.str("PMS_METRICS_TOKEN", default="")
PMS_METRICS_ALLOWED_NETWORKS = [
    ipaddress.ip_network(n)
    for n in env.list(
        "PMS_METRICS_ALLOWED_NETWORKS",
        default=[
            "127.0.0.0/8",
            "::1/128",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "fc00::/7",
        ],
    )
]
