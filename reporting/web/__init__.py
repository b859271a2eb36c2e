"""The compliance console: meetaudit in a browser, for officers, auditors and investigators.

A thin face over the same library functions as the CLI: every route parses its input, asks
:func:`reporting.web.permissions.allowed`, calls one library function and renders a template.
Accounts and sessions live in PostgreSQL (:mod:`reporting.web.accounts`), so several instances
can serve one database. Nothing happens at import time: :func:`reporting.web.app.create_app`
builds the application from settings.
"""
