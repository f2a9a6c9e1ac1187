"""``pixsearch serve``: the REST API and the web page on one port (uvicorn)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pixsearch.cli._common import LibraryOpt, StoreOpt, app, errors
from pixsearch.cli.output import err, note, out


@app.command()
def serve(
    library: LibraryOpt = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="Port (0: any free).")] = 8000,
    region: Annotated[
        str | None, typer.Option("--region", help="Content-policy region (env PIXSEARCH_REGION).")
    ] = None,
    store: StoreOpt = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            metavar="NAME",
            help="Another name (or address) browsers may reach the server by; repeatable. Others are "
            "refused (DNS rebinding). Always allowed: --host's own name; localhost, 127.0.0.1 and [::1] "
            "for a loopback --host.",
        ),
    ] = None,
    readers: Annotated[
        int | None,
        typer.Option(
            "--readers",
            min=1,
            help="Searches served at once, each in a reader process of its own (env PIXSEARCH_READERS; "
            "default: one per two cores; a search keeps two busy).",
        ),
    ] = None,
    watch: Annotated[
        list[Path] | None,
        typer.Option(
            "--watch",
            metavar="PATH",
            help="Keep the library current with this folder (repeatable): indexes it, then new, changed "
            "and removed photos as they happen; open pages show them without a reload.",
        ),
    ] = None,
) -> None:
    """Serve the gallery page and the REST API (OpenAPI docs at /docs)."""
    import socket

    import uvicorn

    from pixsearch.api.app import create_app
    from pixsearch.api.hosts import allowed_hosts as host_names
    from pixsearch.api.worker import TOKEN_FILE, ensure_token
    from pixsearch.config import load_settings

    # Bind first: a port in use fails at once, and the printed URL names the real port (also --port 0).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        msg = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        err.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    with errors():
        settings = load_settings(library=library, region=region, store=store, readers=readers)
        token, created = ensure_token(settings.library)
        application = create_app(
            settings, token=token, host=host, allowed_hosts=allowed_host or (), reader_processes=True
        )
        # Open the library and load every reader's models now: a bad region or a model mismatch is a
        # one-line error here, and the first visitors do not wait for the models.
        application.state.worker.warm()
        if watch:  # its own writer, on a thread (cli/watching.py), started once the URL is printed
            from pixsearch.cli.watching import BackgroundWatch, check_watch_paths
            from pixsearch.indexing.watch import WatchConfig

            watcher = BackgroundWatch(settings, check_watch_paths(watch), WatchConfig())
    real_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{real_port}/"
    out.print(f"pixsearch gallery: [bold]{url}[/]   API docs: {url}docs", highlight=False, soft_wrap=True)
    token_file = settings.library / TOKEN_FILE
    if created:
        out.print(
            f"API write token (shown once, kept in {token_file}): [bold]{token}[/]",
            highlight=False,
            soft_wrap=True,
        )
    else:
        out.print(f"API write token: in {token_file}", highlight=False, soft_wrap=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        names = ", ".join(host_names(host, allowed_host or ()))
        note.print(
            "[yellow]warning:[/] listening beyond this machine; reads need no token. "
            f"Answering to: {names} (add names with --allowed-host)",
            highlight=False,
            soft_wrap=True,
        )
    out.print("Ctrl+C stops the server.", highlight=False, soft_wrap=True)
    config = uvicorn.Config(application, log_level="warning", access_log=False, lifespan="on")
    if watch:
        watcher.start()
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        if watch:
            watcher.stop()
