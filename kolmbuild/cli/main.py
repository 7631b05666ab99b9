"""The ``kolmbuild`` command group.

``kolmbuild [OPTIONS] [TARGET|OVERRIDE…]`` builds, like make; every other verb is a subcommand
loaded only when called (so ``kolmbuild`` alone never imports torch, llama.cpp or provider SDKs).
User errors (:class:`~kolmbuild.errors.KolmError`) print one message and exit with the error's
code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from typing import Any

import click

from kolmbuild import __version__
from kolmbuild.cli.state import CliState
from kolmbuild.errors import KolmError

# verb -> "module:attribute". Each concern owns its module under kolmbuild/cli/.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "build": ("kolmbuild.cli.build_cmds:build", "Build stale targets (the default verb)."),
    "status": ("kolmbuild.cli.build_cmds:status", "Each stage: up to date or stale, and why."),
    "dag": ("kolmbuild.cli.build_cmds:dag", "The stage graph (text, --dot, --json)."),
    "clean": ("kolmbuild.cli.build_cmds:clean", "Remove built artifacts."),
    "gc": ("kolmbuild.cli.build_cmds:gc", "Drop cache entries no target references."),
    "cache": ("kolmbuild.cli.cache_cmds:cache", "The cache: status, push, pull (remote cache), verify."),
    "verify": ("kolmbuild.cli.artifact_cmds:verify", "Verify a .kolm file offline."),
    "inspect": ("kolmbuild.cli.artifact_cmds:inspect_", "Summarize a .kolm file."),
    "keygen": ("kolmbuild.cli.artifact_cmds:keygen", "Write a signing key pair."),
    "sign": ("kolmbuild.cli.artifact_cmds:sign", "Add a signature to a .kolm file."),
    "compute": ("kolmbuild.cli.compute_cmds:compute", "Compute backends: list, detect, pick, quote, rent."),
    "seeds": ("kolmbuild.cli.seeds_cmds:seeds", "Validate or convert example files."),
    "run": ("kolmbuild.cli.run_cmds:run", "Answer inputs with a .kolm file, offline."),
    "eval": ("kolmbuild.cli.eval_cmds:eval_", "Score a .kolm file (or an endpoint) on examples."),
    "replay": ("kolmbuild.cli.replay_cmds:replay", "Re-run a .kolm file's test rows; exit 1 on any changed output."),
    "drift": ("kolmbuild.cli.drift_cmds:drift", "Inputs run/serve logged: list, accept for the next compile, clear."),
    "serve": ("kolmbuild.cli.serve_cmds:serve", "Serve a .kolm file (OpenAI / LoRAX compatible)."),
    "bench": ("kolmbuild.cli.serve_cmds:bench", "Measure calls/s or tokens/s of a .kolm file."),
    "import": ("kolmbuild.cli.migrate_cmds:import_", "Import a Predibase/Ludwig export."),
    "compare": ("kolmbuild.cli.migrate_cmds:compare", "Compare two eval records."),
    "report": ("kolmbuild.cli.migrate_cmds:report", "Render a sweep report."),
    "publish": ("kolmbuild.cli.publish_cmds:publish", "Publish a .kolm file to a registry URL."),
    "pull": ("kolmbuild.cli.publish_cmds:pull", "Fetch and verify a .kolm file from a registry."),
}
DEFAULT_COMMAND = "build"


class KolmGroup(click.Group):
    """Lazy subcommands; anything that is not a verb (a target, an override) goes to ``build``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(LAZY_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = LAZY_COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr = entry[0].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("kolmbuild"):
                raise click.UsageError(f"'{cmd_name}' is not available in this installation") from exc
            raise KolmError(
                f"'{cmd_name}' needs the optional package {exc.name!r}",
                hint="install the matching extra, e.g. pip install 'kolmbuild[runtime]'",
            ) from exc
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help lists verbs without importing them (and the optional packages they need).
        rows = [(name, help_) for name, (_, help_) in sorted(LAZY_COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[Any, Any, list[str]]:
        if args and args[0] not in LAZY_COMMANDS and not args[0].startswith("-"):
            args = [DEFAULT_COMMAND, *args]
        return super().resolve_command(ctx, args)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # `kolmbuild` alone, or `kolmbuild -n`, `kolmbuild -m backend=a,b`: build is implied. Group
        # options (-C, -f, --debug, …) come first; the first token that is neither a group option
        # nor a verb starts the build's own arguments.
        rest = list(args)
        head: list[str] = []
        group_opts = {o for p in self.params for o in getattr(p, "opts", [])}
        flag_opts = {o for p in self.params if getattr(p, "is_flag", False) for o in p.opts}
        while rest:
            tok = rest[0]
            name = tok.split("=", 1)[0]
            if name in group_opts:
                head.append(rest.pop(0))
                if name not in flag_opts and "=" not in tok and rest:
                    head.append(rest.pop(0))
                continue
            break
        if not rest or rest[0] not in LAZY_COMMANDS and rest[0] not in ("--help", "--version"):
            rest = [DEFAULT_COMMAND, *rest]
        return super().parse_args(ctx, head + rest)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KolmError as exc:
            if isinstance(ctx.obj, CliState) and ctx.obj.debug:
                traceback.print_exc()
            click.echo(f"kolmbuild: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("kolmbuild: interrupted", err=True)
            ctx.exit(130)


@click.group(cls=KolmGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kolmbuild")
@click.option("-C", "directory", type=click.Path(file_okay=False), default=None, help="Run as if started in DIR.")
@click.option("-f", "kolmfile", type=click.Path(dir_okay=False), default=None, help="Use FILE as the kolmfile.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, directory: str | None, kolmfile: str | None, debug: bool) -> None:
    """make for compiled AI tasks: build every stale target of kolmfile.yaml into a .kolm file."""
    ctx.obj = ctx.ensure_object(CliState).with_options(directory, kolmfile, debug)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        # the raw argv keys the no-op stamp (see kolmbuild.engine.fastpath)
        cli.main(args=args, prog_name="kolmbuild", standalone_mode=True, obj=CliState(argv=tuple(args)))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
