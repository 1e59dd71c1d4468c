"""Django settings for TMC, read from TMC_* environment variables.

Every setting has a safe default for the embedded set-up (SQLite, local Huey,
the gateway simulator); production is the default mode, so secure cookies,
HTTPS redirects and no debug pages apply unless TMC_DEBUG says otherwise.
A value that cannot work stops the process here with a clear message.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from tmc.lib import env, keys
from tmc.lib.security_policy import PRESETS

BASE_DIR = Path(__file__).resolve().parent


# WAL lets the web and worker processes read while one writes; IMMEDIATE
# transactions take the write lock up front instead of failing with
# "database is locked" when a read upgrades. A sqlite:/// URL gets them too.
_SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


def _database(url: str, home: Path) -> dict[str, Any]:
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(home / "tmc.sqlite3"),
            "OPTIONS": dict(_SQLITE_OPTIONS),
            # A file, not Django's shared in-memory database, for tests too:
            # the worker's threads then wait for locks as in production
            # instead of failing at once with "table is locked".
            "TEST": {"NAME": str(home / "test-tmc.sqlite3")},
        }
    scheme = urlsplit(url).scheme
    if scheme not in {"postgres", "postgresql", "sqlite"}:
        raise env.ConfigurationError(
            f"TMC_DATABASE_URL scheme {scheme!r} is not supported; "
            "use postgres://user@host:port/name or sqlite:///path"
        )
    pool_size = env.read_int("TMC_DB_POOL_SIZE", 0, minimum=0)
    pooled = pool_size > 0 and scheme.startswith("postgres")
    conn_max_age = 0 if pooled else env.read_int("TMC_DB_CONN_MAX_AGE", 60, minimum=0)
    try:
        config: dict[str, Any] = dict(
            dj_database_url.parse(url, conn_max_age=conn_max_age)
        )
    except ValueError as exc:
        raise env.ConfigurationError(f"TMC_DATABASE_URL is not usable: {exc}") from exc
    if scheme.startswith("postgres"):
        config["CONN_HEALTH_CHECKS"] = True
        if pooled:
            config["OPTIONS"] = {
                **config.get("OPTIONS", {}),
                "pool": {"min_size": 1, "max_size": pool_size, "timeout": 10},
            }
    else:
        config["OPTIONS"] = dict(_SQLITE_OPTIONS)
    return config


def email_settings(url: str, home: Path) -> dict[str, Any]:
    """Django's mail settings for a TMC_EMAIL_URL (empty: files in TMC_HOME)."""
    if not url:
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(home / "mail"),
        }
    parts = urlsplit(url)
    if parts.scheme == "console":
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if parts.scheme == "file":
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": unquote(parts.path),
        }
    if parts.scheme in {"smtp", "smtps", "smtp+tls"}:
        if not parts.hostname:
            raise env.ConfigurationError("TMC_EMAIL_URL needs a host name")
        options = parse_qs(parts.query)
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": parts.hostname,
            "EMAIL_PORT": parts.port or (465 if parts.scheme == "smtps" else 587),
            "EMAIL_HOST_USER": unquote(parts.username or ""),
            "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
            "EMAIL_USE_SSL": parts.scheme == "smtps",
            "EMAIL_USE_TLS": parts.scheme == "smtp+tls",
            "DEFAULT_FROM_EMAIL": options.get("from", ["tmc@localhost"])[0],
        }
    raise env.ConfigurationError(
        f"TMC_EMAIL_URL scheme {parts.scheme!r} is not supported; use "
        "smtp://, smtps://, smtp+tls://, file:///path or console:"
    )


def _rates(pairs: list[str]) -> dict[str, float]:
    """Messages per second by gateway name, from ``name=rate`` pairs."""
    rates: dict[str, float] = {}
    for pair in pairs:
        name, _, raw = pair.partition("=")
        try:
            rate = float(raw)
        except ValueError:
            rate = 0.0
        if not name.strip() or rate <= 0:
            raise env.ConfigurationError(
                f"TMC_GATEWAY_RATES entry {pair!r} is not name=messages_per_second"
            )
        rates[name.strip()] = rate
    return rates


def _huey(redis_url: str, home: Path) -> dict[str, Any]:
    common = {"name": env.read_str("TMC_QUEUE_NAME", "tmc"), "immediate": False}
    if redis_url:
        return {
            **common,
            "huey_class": "huey.PriorityRedisHuey",
            "connection": {"url": redis_url},
            "consumer": {"workers": 4, "worker_type": "thread"},
        }
    return {
        **common,
        "huey_class": "huey.SqliteHuey",
        "filename": str(home / "queue.sqlite3"),
        "consumer": {"workers": 2, "worker_type": "thread"},
    }


try:
    TMC_HOME = env.read_home()
    DEBUG = env.read_bool("TMC_DEBUG", default=False)
    SECRET_KEY = keys.read_secret(TMC_HOME, keys.SECRET_KEY_FILE)
    TMC_MASTER_KEY_PATH = TMC_HOME / keys.MASTER_KEY_FILE

    ALLOWED_HOSTS = env.read_list("TMC_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
    if not ALLOWED_HOSTS:
        raise env.ConfigurationError("TMC_ALLOWED_HOSTS names no host")
    CSRF_TRUSTED_ORIGINS = env.read_list("TMC_CSRF_TRUSTED_ORIGINS", [])

    DATABASES = {"default": _database(env.read_str("TMC_DATABASE_URL"), TMC_HOME)}

    TMC_REDIS_URL = env.read_str("TMC_REDIS_URL")
    if TMC_REDIS_URL and urlsplit(TMC_REDIS_URL).scheme not in {
        "redis",
        "rediss",
        "unix",
    }:
        raise env.ConfigurationError(
            "TMC_REDIS_URL must start with redis://, rediss:// or unix://"
        )
    HUEY = _huey(TMC_REDIS_URL, TMC_HOME)
    # Webhooks to plain http and to private, loopback or link-local
    # addresses are refused unless this is set (development and tests).
    TMC_WEBHOOK_ALLOW_PRIVATE = env.read_bool(
        "TMC_WEBHOOK_ALLOW_PRIVATE", default=False
    )
    if TMC_REDIS_URL:
        CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": TMC_REDIS_URL,
            }
        }

    # Production is the default: cookies only over TLS and plain HTTP
    # redirected, unless a TLS-terminating proxy already redirects.
    SESSION_COOKIE_SECURE = not DEBUG
    CSRF_COOKIE_SECURE = not DEBUG
    SECURE_SSL_REDIRECT = not DEBUG and env.read_bool("TMC_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env.read_int("TMC_HSTS_SECONDS", 0, minimum=0)
    # Joining the browsers' preload list is hard to undo, so it is the
    # operator's explicit choice rather than a consequence of enabling HSTS.
    SECURE_HSTS_PRELOAD = env.read_bool("TMC_HSTS_PRELOAD", default=False)
    if env.read_bool("TMC_BEHIND_TLS_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    _preset = env.read_str("TMC_SECURITY_PRESET", "published")
    if _preset not in PRESETS:
        raise env.ConfigurationError(
            f"TMC_SECURITY_PRESET={_preset!r} is not a preset; "
            f"use one of {', '.join(sorted(PRESETS))}"
        )
    # The asvs preset has no periodic rotation (NIST SP 800-63B), so the
    # variable only changes the age where a preset has one.
    _staff_password_max_age_days = PRESETS[_preset].staff_password_max_age_days
    if _staff_password_max_age_days is not None:
        _staff_password_max_age_days = env.read_int(
            "TMC_STAFF_PASSWORD_MAX_AGE_DAYS", _staff_password_max_age_days, minimum=1
        )
    TMC_SECURITY_POLICY = replace(
        PRESETS[_preset],
        idle_minutes=env.read_int(
            "TMC_SESSION_IDLE_MINUTES", PRESETS[_preset].idle_minutes, minimum=1
        ),
        second_password_window_minutes=env.read_int(
            "TMC_SECOND_PASSWORD_MINUTES",
            PRESETS[_preset].second_password_window_minutes,
            minimum=1,
        ),
        staff_password_max_age_days=_staff_password_max_age_days,
    )

    TMC_BASE_URL = env.read_str("TMC_BASE_URL", "http://127.0.0.1:8000")
    TMC_DEFAULT_REGION = env.read_str("TMC_DEFAULT_REGION", "GB").upper()
    TMC_MAX_PARTS = env.read_int("TMC_MAX_PARTS", 6, minimum=1)
    # The free trial: credits given to an organisation opened without a
    # package, and the notice appended to each of its texts.
    TMC_TRIAL_CREDITS = env.read_int("TMC_TRIAL_CREDITS", 20, minimum=0)
    TMC_TRIAL_NOTICE = env.read_str("TMC_TRIAL_NOTICE", " - Sent with a TMC free trial")
    TMC_GATEWAY = env.read_str("TMC_GATEWAY", "simulator")
    TMC_SIMULATOR_REPORT_DELAY = env.read_float(
        "TMC_SIMULATOR_REPORT_DELAY", 2.0, minimum=0.0, maximum=3600.0
    )
    TMC_SIMULATOR_FAILURE_RATE = env.read_float(
        "TMC_SIMULATOR_FAILURE_RATE", 0.0, minimum=0.0, maximum=1.0
    )
    # The SMPP provider (TMC_GATEWAY=smpp). One `tmc smpp` worker holds the
    # bind; the password may come from TMC_SMPP_PASSWORD_FILE.
    TMC_SMPP_HOST = env.read_str("TMC_SMPP_HOST", "127.0.0.1")
    TMC_SMPP_PORT = env.read_int("TMC_SMPP_PORT", 2775, minimum=1)
    TMC_SMPP_SYSTEM_ID = env.read_str("TMC_SMPP_SYSTEM_ID", "")
    TMC_SMPP_PASSWORD = env.read_str("TMC_SMPP_PASSWORD", "")
    TMC_SMPP_SYSTEM_TYPE = env.read_str("TMC_SMPP_SYSTEM_TYPE", "")
    TMC_SMPP_WINDOW = env.read_int("TMC_SMPP_WINDOW", 10, minimum=1)
    TMC_SMPP_TLS = env.read_bool("TMC_SMPP_TLS", default=False)
    # The CA certificate(s) that sign the SMSC's certificate, when it is not
    # signed by an authority the system trusts (a PEM file's path).
    TMC_SMPP_TLS_CA_FILE = env.read_str("TMC_SMPP_TLS_CA_FILE", "")
    if TMC_SMPP_TLS_CA_FILE and not Path(TMC_SMPP_TLS_CA_FILE).is_file():
        raise env.ConfigurationError(
            f"TMC_SMPP_TLS_CA_FILE={TMC_SMPP_TLS_CA_FILE!r} is not a readable file"
        )
    TMC_SMPP_GSM7_PACKED = env.read_bool("TMC_SMPP_GSM7_PACKED", default=False)
    TMC_SMPP_ENQUIRE_LINK_SECONDS = env.read_float(
        "TMC_SMPP_ENQUIRE_LINK_SECONDS", 30.0, minimum=1.0, maximum=3600.0
    )
    # The generic JSON provider (TMC_GATEWAY=http). Its callbacks are signed
    # with TMC_HTTP_GATEWAY_SECRET; without a secret every callback is refused.
    TMC_HTTP_GATEWAY_NAME = env.read_str("TMC_HTTP_GATEWAY_NAME", "http")
    TMC_HTTP_GATEWAY_URL = env.read_str("TMC_HTTP_GATEWAY_URL", "")
    TMC_HTTP_GATEWAY_AUTH_HEADER = env.read_str("TMC_HTTP_GATEWAY_AUTH_HEADER", "")
    TMC_HTTP_GATEWAY_SECRET = env.read_str("TMC_HTTP_GATEWAY_SECRET", "")
    TMC_HTTP_GATEWAY_FIELDS = dict(
        item.split("=", 1)
        for item in env.read_list("TMC_HTTP_GATEWAY_FIELDS", [])
        if "=" in item
    )

    # Simulator instances that answer every submission with a temporary
    # error, as a provider that is down would: for trying failover.
    TMC_SIMULATOR_DOWN = env.read_list("TMC_SIMULATOR_DOWN", [])

    # Routing and retries (see docs/architecture.md, "Routing").
    TMC_GATEWAY_RATE = env.read_float(
        "TMC_GATEWAY_RATE", 100.0, minimum=0.1, maximum=1_000_000.0
    )
    TMC_GATEWAY_RATES = _rates(env.read_list("TMC_GATEWAY_RATES", []))
    TMC_GATEWAY_BURST_SECONDS = env.read_float(
        "TMC_GATEWAY_BURST_SECONDS", 0.1, minimum=0.0, maximum=60.0
    )
    TMC_THROUGHPUT_MAX_WAIT = env.read_float(
        "TMC_THROUGHPUT_MAX_WAIT", 5.0, minimum=0.0, maximum=600.0
    )
    TMC_GATEWAY_BACKOFF_SECONDS = env.read_int(
        "TMC_GATEWAY_BACKOFF_SECONDS", 30, minimum=1
    )
    TMC_GATEWAY_BACKOFF_MAX_SECONDS = env.read_int(
        "TMC_GATEWAY_BACKOFF_MAX_SECONDS", 600, minimum=1
    )
    TMC_RETRY_MAX_ATTEMPTS = env.read_int("TMC_RETRY_MAX_ATTEMPTS", 5, minimum=1)
    TMC_RETRY_BASE_SECONDS = env.read_int("TMC_RETRY_BASE_SECONDS", 120, minimum=1)
    TMC_MESSAGE_VALIDITY_HOURS = env.read_int(
        "TMC_MESSAGE_VALIDITY_HOURS", 24, minimum=1
    )
    TMC_RECONCILE_AFTER_SECONDS = env.read_int(
        "TMC_RECONCILE_AFTER_SECONDS", 300, minimum=1
    )

    # Per API key: a sustained rate and the burst a quiet key may spend at
    # once (a token bucket; see tmc.api.ratelimit).
    TMC_API_RATE_PER_SECOND = env.read_float(
        "TMC_API_RATE_PER_SECOND", 10.0, minimum=0.01, maximum=10_000.0
    )
    TMC_API_RATE_BURST = env.read_int("TMC_API_RATE_BURST", 50, minimum=1)
    # How long an Idempotency-Key's first answer is kept for replay; older
    # records are deleted each hour and the key may then be used afresh.
    TMC_API_IDEMPOTENCY_HOURS = env.read_int("TMC_API_IDEMPOTENCY_HOURS", 24, minimum=1)

    # Email to SMS (`tmc smtp`): mail to <number>@TMC_SMS_DOMAIN is sent as a
    # text. Clients log in with an API key, over STARTTLS unless plain logins
    # are allowed (loopback and tests); clients at TMC_SMTP_ALLOWED_IPS may
    # send unauthenticated as the user whose registered email is the sender.
    TMC_SMS_DOMAIN = env.read_str("TMC_SMS_DOMAIN", "sms.localhost").lower()
    TMC_SMTP_ALLOW_PLAIN = env.read_bool("TMC_SMTP_ALLOW_PLAIN", default=False)
    TMC_SMTP_ALLOWED_IPS = env.read_list("TMC_SMTP_ALLOWED_IPS", [])
    TMC_SMTP_TLS_CERT = env.read_str("TMC_SMTP_TLS_CERT", "")
    TMC_SMTP_TLS_KEY = env.read_str("TMC_SMTP_TLS_KEY", "")

    # Two years by default: long enough for a yearly audit and its follow-up.
    TMC_AUDIT_RETENTION_DAYS = env.read_int("TMC_AUDIT_RETENTION_DAYS", 730, minimum=1)
    TMC_AUDIT_ANCHOR_FILE = TMC_HOME / "audit-anchors.log"
    # The low-credit alert level of an organisation whose Controller has not
    # chosen one.
    TMC_LOW_CREDIT_THRESHOLD = env.read_int("TMC_LOW_CREDIT_THRESHOLD", 50, minimum=0)
    # 100,000 contacts take about 6 MB; the limit leaves room for wide files.
    TMC_IMPORT_MAX_BYTES = env.read_int(
        "TMC_IMPORT_MAX_BYTES", 50_000_000, minimum=1_000
    )
    # Worker processes that read and seal a large import's rows; 0: none.
    TMC_IMPORT_PROCESSES = env.read_int("TMC_IMPORT_PROCESSES", 2, minimum=0)

    _mail = email_settings(env.read_str("TMC_EMAIL_URL"), TMC_HOME)
    EMAIL_BACKEND = _mail.pop("EMAIL_BACKEND")
    EMAIL_FILE_PATH = _mail.pop("EMAIL_FILE_PATH", str(TMC_HOME / "mail"))
    EMAIL_HOST = _mail.pop("EMAIL_HOST", "localhost")
    EMAIL_PORT = _mail.pop("EMAIL_PORT", 25)
    EMAIL_HOST_USER = _mail.pop("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = _mail.pop("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_SSL = _mail.pop("EMAIL_USE_SSL", False)
    EMAIL_USE_TLS = _mail.pop("EMAIL_USE_TLS", False)
    DEFAULT_FROM_EMAIL = _mail.pop("DEFAULT_FROM_EMAIL", "tmc@localhost")
except (env.ConfigurationError, keys.MissingSecretError) as exc:
    raise ImproperlyConfigured(str(exc)) from exc

SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Scripts and styles come only from our own static files: no inline code,
# no third-party origins.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}
SESSION_COOKIE_HTTPONLY = True
# The idle rule (TMC_SESSION_IDLE_MINUTES) ends sessions much sooner; this is
# only the cookie's outer bound.
SESSION_COOKIE_AGE = 12 * 60 * 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    # Listed so that its docs page uses the bundled Swagger UI files, served
    # by whitenoise, rather than a CDN the CSP would refuse anyway.
    "ninja",
    "huey.contrib.djhuey",
    "tmc.accounts",
    "tmc.identity",
    "tmc.contacts",
    "tmc.messaging",
    "tmc.gateways",
    "tmc.gateways.simulator",
    "tmc.gateways.smpp",
    "tmc.gateways.http",
    "tmc.routing",
    "tmc.boomerang",
    "tmc.audit",
    "tmc.staff",
    "tmc.notifications",
    "tmc.ops",
    "tmc.api",
]

MIDDLEWARE = [
    "tmc.audit.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tmc.api.middleware.ApiErrorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "tmc.identity.middleware.SessionSecurityMiddleware",
    "tmc.accounts.middleware.OrganisationMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "tmc.urls"
ASGI_APPLICATION = "tmc.asgi.application"
WSGI_APPLICATION = "tmc.wsgi.application"

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
                "tmc.identity.context_processors.session_policy",
                "tmc.gateways.simulator.context_processors.simulator",
            ],
        },
    },
]

AUTH_USER_MODEL = "identity.User"
LOGIN_URL = "identity:login"
LOGIN_REDIRECT_URL = "accounts:dashboard"
LOGOUT_REDIRECT_URL = "identity:login"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Length, composition and history follow the security policy in force
    # for the user's organisation.
    {"NAME": "tmc.identity.validators.PolicyPasswordValidator"},
    {"NAME": "tmc.identity.validators.PasswordHistoryValidator"},
]
PASSWORD_RESET_TIMEOUT = 60 * 60

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/London"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = TMC_HOME / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The consumer installs its own handler on "huey"; not propagating
        # keeps each line from being printed twice.
        "huey": {"level": "INFO", "propagate": False},
    },
}
