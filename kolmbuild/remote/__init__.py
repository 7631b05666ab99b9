"""The remote stage cache: a CI runner or a teammate reuses the stages another machine built.

A remote is any fsspec file system (:class:`~kolmbuild.remote.cache.RemoteCache`); run records on it
are signed (:mod:`kolmbuild.remote.envelope`) and used only when a trusted key signed them; every
object is re-hashed on download. :mod:`kolmbuild.remote.settings` picks the remote a command uses.
The engine asks it only for stages that are not up to date here (kolmbuild.engine.remote_sync).
"""
