"""How a server listens and what it tolerates: one frozen value, built by the CLI from its flags."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080  # 0: any free port
    lorax_compat: bool = False
    access_log: bool = False
    parallel: int = 1  # llama.cpp contexts (sharing the memory-mapped weights)
    max_queue: int = 64  # requests waiting for a context; past it: 503 + Retry-After
    max_connections: int = 512  # open connections; a request on one past it: 503 + Retry-After, then close
    backlog: int = 2048  # the listen queue (the kernel caps it at net.core.somaxconn)
    max_body: int = 8 * 1024**2  # bytes; a larger Content-Length: 413 without reading the body
    header_timeout: float = 10.0  # seconds for a request head, from the connection or its first byte
    body_timeout: float = 30.0  # seconds to receive the whole body once the head is in: 408 after
    keep_alive: float = 5.0  # seconds an idle keep-alive connection stays open
    shutdown_timeout: float = 5.0  # on SIGINT/SIGTERM/SIGHUP: time in-flight answers get to finish

    def __post_init__(self) -> None:
        if self.parallel < 1 or self.max_queue < 0 or self.max_connections < 1 or self.max_body < 0:
            raise ValueError("parallel and max_connections must be at least 1; max_queue and max_body at least 0")
        if min(self.header_timeout, self.body_timeout, self.keep_alive) <= 0 or self.shutdown_timeout < 0:
            raise ValueError("timeouts must be positive")
