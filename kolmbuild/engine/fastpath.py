"""Placeholder until the engine lands: never short-circuits."""


def try_noop(args: list[str]) -> int | None:
    return None
