"""Serve a .kolm file over HTTP: OpenAI-compatible, and LoRAX-compatible with ``--lorax-compat``.

:mod:`~kolmbuild.serve.service` (answers, no HTTP) → :mod:`~kolmbuild.serve.router` (routes and
error shapes) → :mod:`~kolmbuild.serve.app` (ASGI) → :mod:`~kolmbuild.serve.server` (uvicorn,
limits, shutdown). :mod:`~kolmbuild.serve.pool` holds the llama.cpp contexts and the queue.
"""

from kolmbuild.serve.options import ServeOptions
from kolmbuild.serve.router import Reply, Router
from kolmbuild.serve.server import KolmHTTPServer, make_server, serve_artifact
from kolmbuild.serve.service import Service

__all__ = ["KolmHTTPServer", "Reply", "Router", "ServeOptions", "Service", "make_server", "serve_artifact"]
