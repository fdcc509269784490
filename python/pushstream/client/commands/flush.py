"""``pushstream flush``: import now what waits, and wait for the imports."""

from __future__ import annotations

import click

from pushstream.client.commands.common import Failure, api_options, client_errors, note, open_api, out, output_option


@click.command()
@click.argument("source", required=False)
@click.argument("sink", required=False)
@click.option(
    "--wait",
    type=click.FloatRange(0, 600),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the imports (0: start them and return).",
)
@output_option
@api_options
@client_errors
def flush(
    *, source: str | None, sink: str | None, wait: float, output: str, url: str, token: str | None, branch: str
) -> None:
    """Import now what waits: close the files being written for SOURCE (or one SINK
    of it; every source when none is given) and wait until they are in their tables.

    Exits with 3 when an import failed or did not finish within --wait (the files
    stay and are retried).

    \b
    Examples:
      pushstream flush
      pushstream flush events
      pushstream flush events clicks --wait 120
    """
    from pushstream.client import render

    results = []
    with open_api(url, token, branch) as api:
        if source is None:
            source_ids = [s["sourceId"] for s in api.list_all(api.sources_path(), "sources")]
        else:
            source_ids = [source]
        for source_id in source_ids:
            path = (api.sink_path(source_id, sink) if sink else api.source_path(source_id)) + "/flush"
            results.append(api.request("POST", path, params={"wait": f"{wait:g}"}, timeout=wait + 60))
    if output == "json":
        out(render.json_text(results if source is None else results[0]))
    else:
        rows = []
        for result in results:
            for item in result.get("files") or []:
                state = item.get("state", "")
                if "retryReason" in item:
                    state += f" (attempt {item.get('retryAttempt')} failed: {item['retryReason']})"
                rows.append([result.get("sourceId"), item.get("sinkId"), item.get("fileId"), state])
        if rows:
            out(render.plain_table(["source", "sink", "file", "state"], rows))
    files = [item for result in results for item in result.get("files") or []]
    failed = [item for item in files if "retryReason" in item]
    waiting = [item for item in files if item.get("state") != "imported" and "retryReason" not in item]
    if failed:
        reasons = "; ".join(f'sink "{i.get("sinkId")}": {i["retryReason"]}' for i in failed)
        raise Failure(f"{len(failed)} file(s) could not be imported, they stay and are retried: {reasons}", 3)
    if waiting and wait > 0:
        raise Failure(f"{len(waiting)} file(s) not imported yet after {wait:g} s (still importing)", 3)
    if not files:
        note("nothing to flush")
    elif waiting:
        note(f"{len(files)} file(s) closed, importing")
    else:
        note(f"{len(files)} file(s) imported")


#: The commands :mod:`pushstream.cli` adds to the ``pushstream`` group.
