"""``antflow-tui attach [PID|ADDRESS]`` and ``antflow-tui web TARGET``."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from antflow_tui import __version__
from antflow_tui.arguments import fail, keymap_option, positive
from antflow_tui.outcome import EXIT_OK, VIEWER_FAILED, viewer_exit_code

if TYPE_CHECKING:
    from antflow.runstream.discovery import Served
    from antflow_tui.attach.source import AttachSource
    from antflow_tui.attach.target import Target
    from antflow_tui.options import AppOptions

ATTACH_HELP = """Watch a run served by another process, with the same screens as live.

\b
  antflow-tui attach                the only job running (or pick one)
  antflow-tui attach PID            the job of that process
  antflow-tui attach unix:PATH      an address, with --token or $ANTFLOW_TOKEN
  antflow-tui attach tcp://HOST:PORT

A job is served with ANTFLOW_SERVE=1 python job.py, `async with antflow.serve():`
in the script, or antflow-tui job.py --headless --serve.

Quitting (q, ctrl+c) detaches: the job goes on. With the control token (the
default for your own jobs) p pauses, r retries, B raises the job's budget, and
X stops the job (it asks first); --read-only watches only. When the job ends
or the connection drops, the screen says so and keeps the last state, and
attaches again when the job (or a new run of the same script) is back.

Exit status: 0; 1 when antflow-tui itself failed; 2 when no job can be attached to.
"""

WEB_HELP = """Watch a running job, or a recording, in a web browser.

TARGET is a process id, an address (unix:PATH or tcp://HOST:PORT, with --token
or $ANTFLOW_TOKEN) or a recording file. Each browser tab runs its own viewer
(antflow-tui attach, or replay for a file); closing a tab only detaches it.
Read-only unless --allow-control. Served on 127.0.0.1 by default: from another
machine, use an ssh tunnel (ssh -L 8000:localhost:8000 HOST).

Needs the web extra: pip install 'antflow[web]'.
"""


def _job_line(number: int, served: Served) -> str:
    """A served job as the picker lists it: its script and pid (not its whole command
    line, which may be long or hold secrets), and when it started."""
    from datetime import datetime

    from antflow_tui.safe_text import clean

    started = datetime.fromtimestamp(served.started_at).strftime("%Y-%m-%d %H:%M:%S")
    script = served.script or (Path(served.argv[0]).name if served.argv else "a script")
    return f"  {number}. {clean(script, 60)} (pid {served.pid}), started {started}"


def choose_job(target: Target, *, interactive: bool) -> Target:
    """With no PID or address: the only job running, or the one the user picks."""
    from antflow_tui.attach.target import running_jobs

    if target.pid is not None or target.address is not None:
        return target
    try:
        jobs = running_jobs(target.folder)
    except OSError as error:
        fail(f"cannot look for served jobs: {error}")
    if not jobs:
        fail(
            "no running job is served here. Serve one with ANTFLOW_SERVE=1 python job.py "
            "(or antflow-tui job.py --headless --serve), then attach."
        )
    if len(jobs) == 1:
        target.pid = jobs[0].pid
        return target
    listing = "\n".join(_job_line(n, served) for n, served in enumerate(jobs, 1))
    if not interactive:
        fail(f"{len(jobs)} jobs are served here; name one: antflow-tui attach PID\n{listing}")
    click.echo(f"{len(jobs)} jobs are served here:\n{listing}", err=True)
    chosen = click.prompt(
        "Attach to", type=click.IntRange(1, len(jobs)), default=len(jobs), err=True
    )
    target.pid = jobs[chosen - 1].pid
    return target


@click.command("attach", help=ATTACH_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("where", metavar="[PID|ADDRESS]", required=False)
@click.option("--token", metavar="TOKEN", help="The token for an ADDRESS ($ANTFLOW_TOKEN).")
@click.option("--read-only", is_flag=True, help="Only watch: no pause, retry or stop.")
@click.option(
    "--record",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    metavar="FILE",
    help="Record what arrives to FILE for `antflow-tui replay FILE`.",
)
@click.option(
    "--interval",
    type=float,
    default=0.25,
    show_default=True,
    callback=positive,
    metavar="SECONDS",
    help="Seconds between the snapshots the job sends (and the display's refresh).",
)
@click.option(
    "--keymap",
    default="",
    metavar="ID=KEY,...",
    help="Remap keys by binding id, e.g. 'pause=space' (ids are listed on error).",
)
@click.option("--web", is_flag=True, hidden=True, help="Run as a browser tab's viewer.")
@click.version_option(__version__, prog_name="antflow-tui")
def attach(
    where: str | None,
    token: str | None,
    read_only: bool,
    record: Path | None,
    interval: float,
    keymap: str,
    web: bool,
) -> None:
    from antflow_tui.attach.source import AttachSource
    from antflow_tui.attach.target import TargetError, parse_target
    from antflow_tui.options import AppOptions

    keys = keymap_option(keymap, AttachSource.CAN)
    try:
        target = parse_target(where, token, read_only=read_only)
    except TargetError as error:
        fail(str(error))
    target = choose_job(target, interactive=sys.stdin.isatty() and not web)
    options = AppOptions(interval=interval, keymap=keys)
    code = asyncio.run(_attach(target, options, record=record, web=web))
    sys.exit(code)


async def _attach(target: Target, options: AppOptions, *, record: Path | None, web: bool) -> int:
    from antflow.runstream.client import AttachError
    from antflow_tui.app import make_app
    from antflow_tui.attach.source import AttachSource

    client = "antflow-tui web" if web else "antflow-tui attach"
    source = AttachSource(target, interval=options.interval, record=record, client=client)
    try:
        await source.connect()
    except (AttachError, OSError) as error:
        fail(f"cannot attach: {error}")
    app = make_app(source, options)
    try:
        await app.run_async()
    finally:
        said = await detach(source)
    if not web:
        # In a browser tab stdout is the page's channel: nothing is printed there.
        click.echo(said, err=True)
        for path in source.recordings:
            click.echo(f"Recorded to {path} (antflow-tui replay {path}).", err=True)
    code = viewer_exit_code(app.return_code)
    if code != EXIT_OK:
        click.echo(f"antflow-tui: {VIEWER_FAILED}", err=True)
    return code


async def detach(source: AttachSource) -> str:
    """Close the connection (the job goes on); returns what quitting says of the job, as
    it stood while attached."""
    said = detached_line(source)
    await source.close()
    return said


def detached_line(source: AttachSource) -> str:
    """What quitting the viewer says of the job: whether it goes on."""
    from antflow_tui.safe_text import clean

    who = clean(source.title, 80)
    if source.pid is not None:
        who += f" (pid {source.pid})"
    ended = source.ended_at is not None
    if source.connected and not ended:
        return f"Detached from {who}; the job goes on."
    if source.connected:
        return f"Detached from {who}: its run has ended (the process is still there)."
    if ended:
        return f"Detached from {who}: the job has ended."
    return f"Detached from {who}: its connection had dropped while it ran."


# ---------------------------------------------------------------------- web


def web_command(
    target: str, *, allow_control: bool, python: str = sys.executable
) -> tuple[str, str]:
    """The command each browser tab runs, and what it shows (never the script: a tab
    that closes ends its viewer, not the job). The token is never on it."""
    quoted = shlex.quote(python)
    if Path(target).is_file():
        return f"{quoted} -m antflow_tui replay {shlex.quote(target)}", f"replay {target}"
    flags = "" if allow_control else " --read-only"
    return f"{quoted} -m antflow_tui attach {shlex.quote(target)} --web{flags}", target


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("web", help=WEB_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("target", metavar="TARGET")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--token", metavar="TOKEN", help="The token for an ADDRESS ($ANTFLOW_TOKEN).")
@click.option("--allow-control", is_flag=True, help="Let the page pause, retry and stop the job.")
@click.option("--allow-remote", is_flag=True, help="Listen on an address other machines can reach.")
@click.option(
    "--public-url",
    metavar="URL",
    help="The page's address behind a reverse proxy (https://example.com/antflow); "
    "by default the page works at whatever address it is opened (a tunnel's too).",
)
@click.version_option(__version__, prog_name="antflow-tui")
def web(
    target: str,
    host: str,
    port: int,
    token: str | None,
    allow_control: bool,
    allow_remote: bool,
    public_url: str | None,
) -> None:
    from antflow.runstream.discovery import find
    from antflow_tui.attach.target import TOKEN_VARIABLE, TargetError, parse_target

    if not _loopback(host) and not allow_remote:
        fail(
            f"refusing to serve on {host}: anyone who can reach it could watch the job"
            f"{' and control it' if allow_control else ''}. Use an ssh tunnel "
            f"(ssh -L {port}:localhost:{port} HOST), or pass --allow-remote if you mean it."
        )
    name = Path(target).name
    if not Path(target).is_file():
        try:
            parsed = parse_target(target, token)
        except TargetError as error:
            fail(str(error))
        if parsed.pid is None and parsed.address is None:
            fail(f"{target!r} is not a process id, an address or a recording file")
        try:
            served = None if parsed.pid is None else find(parsed.pid)
        except OSError as error:
            fail(f"cannot look for served jobs: {error}")
        if parsed.pid is not None and served is None:
            fail(f"no run is served by pid {parsed.pid} (ANTFLOW_SERVE=1 serves one)")
        name = Path(served.script).name if served and served.script else target
        if parsed.token:
            # Inherited by each tab's viewer: never in a URL or on a command line.
            os.environ[TOKEN_VARIABLE] = parsed.token
    try:
        from antflow_tui.attach.web import PageServer, PublicUrlError
        from antflow_tui.attach.web import public_url as page_address
    except ImportError:
        fail("the web view needs textual-serve: pip install 'antflow[web]'")
    public = None
    if public_url is not None:
        try:
            public = page_address(public_url)
        except PublicUrlError as error:
            raise click.BadParameter(str(error), param_hint="--public-url") from None
    command, shown = web_command(target, allow_control=allow_control)
    if not _loopback(host):
        click.echo(
            f"antflow-tui: WARNING: serving on {host}, reachable from other machines", err=True
        )
    mode = "with control" if allow_control else "read-only"
    click.echo(f"antflow-tui: {shown} on {public or f'http://{host}:{port}'} ({mode})", err=True)
    what = "a recording" if Path(target).is_file() else f"the job {shown}, {mode}"
    server = PageServer(
        command,
        host=host,
        port=port,
        name=name,
        what=what,
        public=public,
        # Any other Host is a page elsewhere reaching this one through DNS tricks; with
        # --allow-remote the machine's own names cannot all be known.
        hosts=None if allow_remote and not _loopback(host) else (host,),
    )
    server.serve()
    sys.exit(EXIT_OK)
