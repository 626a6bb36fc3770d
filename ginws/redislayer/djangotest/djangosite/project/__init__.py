"""A tiny Django Channels project for ginws interop tests: the Channels tutorial chat, a consumer
that lets a test drive the channel layer, and background workers for `manage.py runworker`. It
needs no database. Settings come from environment variables (see settings.py);
ginws.dev/ginws/redislayer/djangotest starts it under Daphne and runworker."""
