"""``pushstream stats [SOURCE [SINK]]``: the statistics API of every sink (or those of
one source, or one sink) — records per level, files on their way, failed imports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from pushstream.client.commands.common import api_options, client_errors, note, open_api, out, output_option

if TYPE_CHECKING:
    from pushstream.client.api import StreamApi

#: The levels of the statistics, in the order records go through them.
LEVELS = ("local", "staging", "target")


@click.command()
@click.argument("source", required=False)
@click.argument("sink", required=False)
@output_option
@api_options
@client_errors
def stats(*, source: str | None, sink: str | None, output: str, url: str, token: str | None, branch: str) -> None:
    """Statistics of the sinks of every source, of SOURCE, or of its SINK: records
    per level (local → staging → target), files not imported yet, failed imports
    with their reasons.

    \b
    Examples:
      pushstream stats
      pushstream stats events
      pushstream stats events clicks -o json
    """
    from pushstream.client import render

    with open_api(url, token, branch) as api:
        if source is None:
            sources = [s["sourceId"] for s in api.list_all(api.sources_path(), "sources")]
        else:
            api.source(source)  # an unknown source is an error, with the close names
            sources = [source]
        report: list[dict[str, Any]] = []
        for source_id in sources:
            if sink is None:
                sink_ids = [s["sinkId"] for s in api.list_all(api.source_path(source_id) + "/sinks", "sinks")]
            else:
                api.sink(source_id, sink)
                sink_ids = [sink]
            report.extend(sink_statistics(api, source_id, sink_id) for sink_id in sink_ids)
    if output == "json":
        out(render.json_text(report))
        return
    if not report:
        note("no sinks")
        return
    rows = []
    for item in report:
        totals = item["statistics"]
        levels = totals.get("levels") or {}
        files = item["files"]
        rows.append(
            [
                item["sourceId"],
                item["sinkId"],
                *[(levels.get(level) or {}).get("recordsCount", 0) for level in LEVELS],
                (totals.get("rejected") or {}).get("recordsCount", 0),
                sum(1 for f in files if f["state"] in ("closing", "importing")),
                len(item["failedFiles"]),
            ]
        )
    headers = ["source", "sink", *LEVELS, "rejected", "files waiting", "failed imports"]
    text = render.plain_table(headers, rows)
    failures = [(item, f) for item in report for f in item["failedFiles"]]
    if failures:
        text += "\nfailed imports:\n"
        text += render.plain_table(
            ["source", "sink", "opened", "attempts", "next attempt", "reason"],
            [
                [
                    item["sourceId"],
                    item["sinkId"],
                    f.get("openedAt"),
                    f.get("retryAttempt"),
                    f.get("retryAfter", ""),
                    f.get("retryReason", ""),
                ]
                for item, f in failures
            ],
        )
    out(text)


def sink_statistics(api: StreamApi, source_id: str, sink_id: str) -> dict[str, Any]:
    """One sink's ``statistics/total``, its recent files and its failed files."""
    path = api.sink_path(source_id, sink_id) + "/statistics"
    return {
        "sourceId": source_id,
        "sinkId": sink_id,
        "statistics": api.get(path + "/total"),
        "files": api.get(path + "/files").get("files") or [],
        "failedFiles": api.get(path + "/files", params={"failedFiles": "true"}).get("files") or [],
    }
