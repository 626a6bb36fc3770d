"""A tiny Django Channels project for ginws interop tests: the Channels tutorial chat and a consumer
that lets a test drive the channel layer. It needs no database. Settings come from environment
variables (see settings.py); ginws.dev/ginws/redislayer/djangotest starts it under Daphne."""
