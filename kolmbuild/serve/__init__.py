"""Serve a .kolm file over HTTP: OpenAI-compatible, and LoRAX-compatible with ``--lorax-compat``.

See :mod:`kolmbuild.serve.http` for the routes and the choice of HTTP stack.
"""

from kolmbuild.serve.http import KolmHTTPServer, Router, make_server
from kolmbuild.serve.service import Service

__all__ = ["KolmHTTPServer", "Router", "Service", "make_server"]
