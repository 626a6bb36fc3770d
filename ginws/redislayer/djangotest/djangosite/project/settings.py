"""Settings for the interop project. Everything that varies comes from the environment:

GINWS_REDIS_HOSTS      comma-separated channels_redis hosts (default redis://127.0.0.1:6379/4)
GINWS_CHANNELS_PREFIX  channels_redis key prefix (default "asgi", the channels_redis default)
GINWS_CHANNELS_CAPACITY  per-channel capacity (default 100, the channels_redis default)
GINWS_CHANNELS_EXPIRY    message expiry in seconds (default 60)
"""

import os

SECRET_KEY = "ginws-interop-tests-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]

# No models, no sessions, no CSRF: the project only routes sockets and one dummy login view.
INSTALLED_APPS = ["channels"]
MIDDLEWARE = []
DATABASES = {}
ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"
USE_TZ = True

_hosts = [
    h.strip()
    for h in os.environ.get("GINWS_REDIS_HOSTS", "redis://127.0.0.1:6379/4").split(",")
    if h.strip()
]

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": _hosts,
            "prefix": os.environ.get("GINWS_CHANNELS_PREFIX", "asgi"),
            "capacity": int(os.environ.get("GINWS_CHANNELS_CAPACITY", "100")),
            "expiry": int(os.environ.get("GINWS_CHANNELS_EXPIRY", "60")),
        },
    },
}

# `manage.py runworker` says it is running (djangotest waits for that line); other Django logging
# keeps its defaults.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django.channels.worker": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}
