"""Settings for certctl notifications, read from the environment.

See the configuration table in README.md for every variable.
"""
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from certctl import env_file
from certctl.config import (
    QClusterSettings,
    dev_secret_key,
    env_bool,
    env_choice,
    env_duration,
    env_float,
    env_int,
    env_str,
)

# ModelAdmin[NotificationEvent] and the like: generic at run time as they are for mypy.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

# Before anything reads the environment: the checkout's .env fills in what the environment leaves unset.
env_file.load()

DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        _env_file = env_file.env_file_path()
        raise ImproperlyConfigured(
            "SECRET_KEY is not set and DJANGO_DEBUG is off: set SECRET_KEY to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))') in the environment"
            + (f" or in {_env_file}, where ./bin/run generates one" if _env_file else "")
            + "."
        )
    SECRET_KEY = dev_secret_key(BASE_DIR / ".secret_key")

ALLOWED_HOSTS = [
    h.strip() for h in env_str("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in env_str("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

# --- Behind TLS (docs/deployment.md, "Behind TLS") ---
# Off by default so that plain-HTTP local runs keep working; the production values are documented.
CERTCTL_SECURE_COOKIES = env_bool("CERTCTL_SECURE_COOKIES", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = CERTCTL_SECURE_COOKIES
SECURE_HSTS_SECONDS = env_int("CERTCTL_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("CERTCTL_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("CERTCTL_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("CERTCTL_HTTPS_REDIRECT", False)
# Probes and Prometheus scrape the process directly over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$", r"^metrics$"]
# Only behind a proxy that sets X-Forwarded-Proto itself and drops the client's: anyone could send it otherwise.
if env_bool("CERTCTL_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Before django_q: its `qcluster` command is replaced by notifications' (stops on a process-group SIGTERM).
    "notifications",
    "django_q",
    "django_prometheus",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "certctl.middleware.RequestIDMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before sessions and auth, whose lookups are the first to find the database gone.
    "notifications.api.errors.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before the CSRF check, which reads the body: a blocked address costs nothing.
    "notifications.web.logins.LoginThrottleMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "certctl.middleware.ContentSecurityPolicyMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "certctl.urls"
WSGI_APPLICATION = "certctl.wsgi.application"

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

# SQLite file in the project directory unless DATABASE_URL says otherwise.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'certctl.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Workers and delivery threads write concurrently; wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 30, "transaction_mode": "IMMEDIATE"})
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # SQLite builds notif_status_created_idx without its INCLUDE column, which only serves PostgreSQL's
    # index-only scans: expected here, so not reported on the default local path. Other checks still are.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
DATABASES["default"]["ENGINE"] = DATABASES["default"]["ENGINE"].replace(
    "django.db.backends.", "django_prometheus.db.backends."
)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

REDIS_URL = env_str("REDIS_URL", "")

# --- Notification delivery (DESIGN §2-4), certctl's names and defaults ---
_SECOND, _MILLISECOND = timedelta(seconds=1), timedelta(milliseconds=1)
CERTCTL_NOTIFICATION_BACKOFF_BASE = env_duration("CERTCTL_NOTIFICATION_BACKOFF_BASE", "1m", minimum=_SECOND)
CERTCTL_NOTIFICATION_BACKOFF_CAP = env_duration("CERTCTL_NOTIFICATION_BACKOFF_CAP", "1h", minimum=_SECOND)
CERTCTL_NOTIFICATION_MAX_ATTEMPTS = env_int("CERTCTL_NOTIFICATION_MAX_ATTEMPTS", 5, minimum=1, maximum=100)
CERTCTL_NOTIFICATION_BACKOFF_JITTER = env_float("CERTCTL_NOTIFICATION_BACKOFF_JITTER", 0, minimum=0, maximum=1)
CERTCTL_NOTIFICATION_RETRY_INTERVAL = env_duration("CERTCTL_NOTIFICATION_RETRY_INTERVAL", "2m", minimum=_SECOND)
CERTCTL_SCHEDULER_NOTIFICATION_PROCESS_INTERVAL = env_duration(
    "CERTCTL_SCHEDULER_NOTIFICATION_PROCESS_INTERVAL", "1m", minimum=_SECOND
)
CERTCTL_NOTIFICATION_BATCH_SIZE = env_int("CERTCTL_NOTIFICATION_BATCH_SIZE", 1000, minimum=1, maximum=100000)
# Sends in flight at once per pass, and to any one destination (a receiver's scheme, host and port): a hanging
# receiver holds at most its share. 64 in flight deliver over 1,000 a second to receivers answering in 50 ms.
CERTCTL_NOTIFICATION_CONCURRENCY = env_int("CERTCTL_NOTIFICATION_CONCURRENCY", 128, minimum=1, maximum=1024)
CERTCTL_NOTIFICATION_DESTINATION_CONCURRENCY = env_int(
    "CERTCTL_NOTIFICATION_DESTINATION_CONCURRENCY", 64, minimum=1, maximum=1024
)
CERTCTL_NOTIFICATION_LEASE = env_duration("CERTCTL_NOTIFICATION_LEASE", "5m", minimum=timedelta(seconds=10))
CERTCTL_NOTIFICATION_CONNECT_TIMEOUT = env_duration("CERTCTL_NOTIFICATION_CONNECT_TIMEOUT", "5s", minimum=_MILLISECOND)
CERTCTL_NOTIFICATION_READ_TIMEOUT = env_duration("CERTCTL_NOTIFICATION_READ_TIMEOUT", "15s", minimum=_MILLISECOND)
# Sent events older than this (by sent_at) are purged with their attempts and operator actions; 0 keeps all.
CERTCTL_NOTIFICATION_RETENTION = env_duration("CERTCTL_NOTIFICATION_RETENTION", "90d", days=True)
# How often counts are folded, the metrics totals folded and expired events purged (notifications.engine.upkeep,
# the housekeeping task).
CERTCTL_NOTIFICATION_HOUSEKEEPING_INTERVAL = env_duration(
    "CERTCTL_NOTIFICATION_HOUSEKEEPING_INTERVAL", "1m", minimum=_SECOND
)
CERTCTL_NOTIFICATION_MAX_MESSAGE_BYTES = env_int("CERTCTL_NOTIFICATION_MAX_MESSAGE_BYTES", 65536, minimum=1)

# A pass starts no delivery and stays for no retry after this long (nor after its start window, the task timeout
# less one delivery); it asks for a kick when it leaves work behind.
CERTCTL_NOTIFICATION_PASS_MAX_DURATION = env_duration("CERTCTL_NOTIFICATION_PASS_MAX_DURATION", "2m", minimum=_SECOND)

# Per-channel circuit breaker (docs/lifecycle.md "Outages"): opens when, over the last WINDOW, at least
# MIN_ATTEMPTS attempts failed at FAILURE_RATE or more, or FAILURES consecutive transient failures spanning at
# least MIN_EVENTS distinct events came with no success within the window (a flaky receiver is not a down one);
# while open, one due event is tried per PROBE interval.
CERTCTL_CHANNEL_BREAKER_FAILURES = env_int("CERTCTL_CHANNEL_BREAKER_FAILURES", 5, minimum=1)
CERTCTL_CHANNEL_BREAKER_MIN_EVENTS = env_int("CERTCTL_CHANNEL_BREAKER_MIN_EVENTS", 3, minimum=1)
CERTCTL_CHANNEL_BREAKER_WINDOW = env_duration("CERTCTL_CHANNEL_BREAKER_WINDOW", "5m", minimum=_SECOND)
CERTCTL_CHANNEL_BREAKER_MIN_ATTEMPTS = env_int("CERTCTL_CHANNEL_BREAKER_MIN_ATTEMPTS", 20, minimum=1)
CERTCTL_CHANNEL_BREAKER_FAILURE_RATE = env_float("CERTCTL_CHANNEL_BREAKER_FAILURE_RATE", 0.8, minimum=0.01, maximum=1)
CERTCTL_CHANNEL_BREAKER_PROBE = env_duration("CERTCTL_CHANNEL_BREAKER_PROBE", "1m", minimum=_SECOND)
if CERTCTL_CHANNEL_BREAKER_MIN_ATTEMPTS < CERTCTL_CHANNEL_BREAKER_FAILURES:
    raise ImproperlyConfigured(
        f"CERTCTL_CHANNEL_BREAKER_MIN_ATTEMPTS ({CERTCTL_CHANNEL_BREAKER_MIN_ATTEMPTS}) is below "
        f"CERTCTL_CHANNEL_BREAKER_FAILURES ({CERTCTL_CHANNEL_BREAKER_FAILURES}): the failure rate would open a "
        f"channel's breaker before that many failures in a row; raise CERTCTL_CHANNEL_BREAKER_MIN_ATTEMPTS to at least "
        f"{CERTCTL_CHANNEL_BREAKER_FAILURES}."
    )

if CERTCTL_NOTIFICATION_BACKOFF_CAP < CERTCTL_NOTIFICATION_BACKOFF_BASE:
    raise ImproperlyConfigured(
        f"CERTCTL_NOTIFICATION_BACKOFF_CAP ({os.environ.get('CERTCTL_NOTIFICATION_BACKOFF_CAP', '1h')}) is shorter "
        f"than CERTCTL_NOTIFICATION_BACKOFF_BASE ({os.environ.get('CERTCTL_NOTIFICATION_BACKOFF_BASE', '1m')}): "
        "raise the cap."
    )
_DELIVERY_BOUND = CERTCTL_NOTIFICATION_CONNECT_TIMEOUT + CERTCTL_NOTIFICATION_READ_TIMEOUT
if CERTCTL_NOTIFICATION_LEASE <= _DELIVERY_BOUND:
    raise ImproperlyConfigured(
        f"CERTCTL_NOTIFICATION_LEASE must be longer than one delivery's connect + read timeout "
        f"({_DELIVERY_BOUND.total_seconds():g}s), or a slow send could be claimed twice."
    )

# --- Channels (DESIGN §3) ---
CERTCTL_SMTP_HOST = env_str("CERTCTL_SMTP_HOST")
CERTCTL_SMTP_PORT = env_int("CERTCTL_SMTP_PORT", 587, minimum=1, maximum=65535)
CERTCTL_SMTP_USERNAME = env_str("CERTCTL_SMTP_USERNAME")
CERTCTL_SMTP_PASSWORD = env_str("CERTCTL_SMTP_PASSWORD")
CERTCTL_SMTP_FROM_ADDRESS = env_str("CERTCTL_SMTP_FROM_ADDRESS")
CERTCTL_SMTP_USE_TLS = env_bool("CERTCTL_SMTP_USE_TLS", True)
# Not certctl's (its e-mails name their recipient): where an alert that names none goes, comma-separated.
CERTCTL_SMTP_RECIPIENTS = env_str("CERTCTL_SMTP_RECIPIENTS")
CERTCTL_WEBHOOK_URL = env_str("CERTCTL_WEBHOOK_URL")
CERTCTL_WEBHOOK_SECRET = env_str("CERTCTL_WEBHOOK_SECRET")
CERTCTL_SLACK_WEBHOOK_URL = env_str("CERTCTL_SLACK_WEBHOOK_URL")
CERTCTL_SLACK_CHANNEL = env_str("CERTCTL_SLACK_CHANNEL")
CERTCTL_SLACK_USERNAME = env_str("CERTCTL_SLACK_USERNAME", "certctl")
CERTCTL_TEAMS_WEBHOOK_URL = env_str("CERTCTL_TEAMS_WEBHOOK_URL")
CERTCTL_PAGERDUTY_ROUTING_KEY = env_str("CERTCTL_PAGERDUTY_ROUTING_KEY")
CERTCTL_PAGERDUTY_SEVERITY = env_choice(
    "CERTCTL_PAGERDUTY_SEVERITY", "warning", ["critical", "error", "warning", "info"]
)
CERTCTL_PAGERDUTY_URL = env_str("CERTCTL_PAGERDUTY_URL", "https://events.pagerduty.com/v2/enqueue")
CERTCTL_OPSGENIE_API_KEY = env_str("CERTCTL_OPSGENIE_API_KEY")
CERTCTL_OPSGENIE_PRIORITY = env_choice("CERTCTL_OPSGENIE_PRIORITY", "P3", ["P1", "P2", "P3", "P4", "P5"])
CERTCTL_OPSGENIE_REGION = env_choice("CERTCTL_OPSGENIE_REGION", "us", ["us", "eu"])
# Unset: the region's Alert API endpoint (notifications.notifiers.opsgenie).
CERTCTL_OPSGENIE_URL = env_str("CERTCTL_OPSGENIE_URL")
# Fernet keys for destinations' secret fields at rest, comma-separated: the first encrypts, all decrypt
# (notifications.sealing; rotate with `notifications rotate-secrets`). ./bin/run generates one into .env.
CERTCTL_SECRETS_KEYS = env_str("CERTCTL_SECRETS_KEYS")

# --- API access (DESIGN §5) ---
CERTCTL_AUTH_TYPE = env_choice("CERTCTL_AUTH_TYPE", "api-key", ["api-key", "none"])
CERTCTL_API_KEYS_NAMED = env_str("CERTCTL_API_KEYS_NAMED")
CERTCTL_RATE_LIMIT_RPS = env_float("CERTCTL_RATE_LIMIT_RPS", 50, minimum=0)
CERTCTL_RATE_LIMIT_BURST = env_int("CERTCTL_RATE_LIMIT_BURST", 100, minimum=1)
# Requests without a valid key, per client address: a burst, then this many a minute; beyond that 429.
CERTCTL_AUTH_FAILURE_BURST = env_int("CERTCTL_AUTH_FAILURE_BURST", 20, minimum=1)
CERTCTL_AUTH_FAILURES_PER_MINUTE = env_float("CERTCTL_AUTH_FAILURES_PER_MINUTE", 10, minimum=0)
CERTCTL_METRICS_TOKEN = env_str("CERTCTL_METRICS_TOKEN")
# /metrics answers loopback clients and holders of the token; PUBLIC opens it to everyone, deliberately.
CERTCTL_METRICS_PUBLIC = env_bool("CERTCTL_METRICS_PUBLIC", False)
CERTCTL_MCP_ALLOW_WRITES = env_bool("CERTCTL_MCP_ALLOW_WRITES", False)
# One of CERTCTL_API_KEYS_NAMED's keys: the MCP server then acts as that key (its name, its permissions), as
# certctl's MCP server does through the REST API.
CERTCTL_API_KEY = env_str("CERTCTL_API_KEY")
# Large enough for a bulk requeue of 10 000 ids or a message at CERTCTL_NOTIFICATION_MAX_MESSAGE_BYTES.
CERTCTL_API_MAX_BODY_BYTES = env_int("CERTCTL_API_MAX_BODY_BYTES", 2 * 1024 * 1024, minimum=1024)
# Django refuses larger bodies before any view reads them (413, notifications.api.errors): never below the API's limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(2_621_440, CERTCTL_API_MAX_BODY_BYTES)

# --- Task queue (django-q2) ---
# A task still running when 90 % of the lease has passed is killed, so that no event is sent while
# another worker may already hold it again (docs/deployment.md, "Leases and timeouts").
# timeout < retry so that the ORM broker never hands out a task twice while it still runs;
# max_attempts bounds redelivery of a failing task (the schedules run again anyway).
_TASK_TIMEOUT = max(1, int(CERTCTL_NOTIFICATION_LEASE.total_seconds() * 0.9))
_WORKER_PROCESSES = env_int("CERTCTL_WORKER_PROCESSES", 2, minimum=1, maximum=64)
# The default is held to the start window where the lease is short; a value set on purpose is not.
_START_WINDOW = timedelta(seconds=_TASK_TIMEOUT) - _DELIVERY_BOUND
_PASS_MAX_DURATION_SET = os.environ.get("CERTCTL_NOTIFICATION_PASS_MAX_DURATION", "").strip()
if _PASS_MAX_DURATION_SET and CERTCTL_NOTIFICATION_PASS_MAX_DURATION > _START_WINDOW:
    raise ImproperlyConfigured(
        f"CERTCTL_NOTIFICATION_PASS_MAX_DURATION ({_PASS_MAX_DURATION_SET}) is longer than a pass may start "
        f"deliveries ({_START_WINDOW.total_seconds():g}s: the task timeout, 90 % of CERTCTL_NOTIFICATION_LEASE, "
        "less one delivery's connect + read timeout); lower it or raise CERTCTL_NOTIFICATION_LEASE."
    )
Q_CLUSTER: QClusterSettings = {
    "name": "certctl",
    "workers": _WORKER_PROCESSES,
    "timeout": _TASK_TIMEOUT,
    "retry": _TASK_TIMEOUT + 60,
    "max_attempts": 2,
    "catch_up": False,
    "ack_failures": True,
    "save_limit": 500,
    # Few tasks fetched ahead: they spread over all clusters, and SIGTERM (which runs them first) stops soon.
    "queue_limit": 2 * _WORKER_PROCESSES,
    # django-q2 reads Q_CLUSTER_NAME (a separate queue on the same broker) and fails without this key.
    "ALT_CLUSTERS": {},
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Logging ---
CERTCTL_LOG_FORMAT = env_choice("CERTCTL_LOG_FORMAT", "text", ["text", "json"])
CERTCTL_LOG_LEVEL = env_choice("CERTCTL_LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR"])
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "certctl.middleware.RequestIDLogFilter"},
        "redact_secrets": {"()": "certctl.logging.SecretRedactionFilter"},
    },
    "formatters": {
        # Control characters a request put in a message are escaped, so that every record stays one line.
        "text": {
            "()": "certctl.logging.EscapingTextFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
        # One JSON object per line; fields passed with extra= (event_id, channel, attempt, outcome,
        # duration_ms, status, ...) become keys of their own.
        "json": {
            "()": "certctl.logging.RedactingJsonFormatter",
            "fmt": "%(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601 in UTC
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": CERTCTL_LOG_FORMAT,
            "filters": ["request_id", "redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "notifications": {"level": CERTCTL_LOG_LEVEL},
        "certctl": {"level": CERTCTL_LOG_LEVEL},
        # django-q2 logs as "django-q": cluster start/stop and task failures, in our format.
        "django-q": {"level": CERTCTL_LOG_LEVEL},
        # runserver's request lines, through our filters (its own handler would print ?api_key=… as sent).
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# --- REST API (DESIGN §5; docs/api.md) ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First, so that a missing key answers 401 with WWW-Authenticate: Bearer realm="certctl".
        "notifications.api.auth.BearerKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["notifications.api.permissions.NotificationAccess"],
    "DEFAULT_THROTTLE_CLASSES": ["notifications.api.throttling.TokenBucketThrottle"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["notifications.api.parsers.LimitedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "notifications.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "certctl notifications API",
    "DESCRIPTION": (
        "Certificate alerts with retries and a dead-letter queue, compatible with certctl's /api/v1/notifications. "
        "Authenticate with `Authorization: Bearer <key>`. Errors are "
        '`{"error": "<HTTP reason>", "message": "…", "request_id": "…"}`; every response carries X-Request-ID.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_GENERATE_CHOICE_DESCRIPTION": False,
    "ENUM_NAME_OVERRIDES": {
        "NotificationStatus": "notifications.models.ListedStatus",
        "DeliveryStatus": "notifications.models.Status",
        "NotificationType": "notifications.models.EventType",
        "NotificationChannel": "notifications.models.Channel",
        "NotificationSeverity": "notifications.models.Severity",
        "AttemptOutcome": "notifications.models.AttemptOutcome",
        "CauseKind": "notifications.models.CauseKind",
        "MarkedAsReadStatus": ["marked_as_read"],
        "RequeuedStatus": ["requeued"],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "notifications.api.schema.add_common_responses",
    ],
}
