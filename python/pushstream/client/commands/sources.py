"""``pushstream sources``: list, create, show and delete sources."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from pushstream.client.commands.common import (
    api_options,
    client_errors,
    entity_state,
    fields_text,
    note,
    open_api,
    out,
    output_option,
    version_text,
)

if TYPE_CHECKING:
    from pushstream.client.api import StreamApi


@click.group()
def sources() -> None:
    """List, create, show and delete sources (HTTP endpoints that take events).

    \b
    Examples:
      pushstream sources create events --description "web events"
      pushstream sources list
      pushstream sources show events -o json
      pushstream sources delete events
    """


@sources.command("list")
@output_option
@api_options
@client_errors
def sources_list(output: str, url: str, token: str | None, branch: str) -> None:
    """List the sources of the branch."""
    from pushstream.client import render

    with open_api(url, token, branch) as api:
        items = api.list_all(api.sources_path(), "sources")
    if output == "json":
        out(render.json_text(items))
        return
    if not items:
        note("no sources")
        return
    rows = [
        [
            s.get("sourceId"),
            s.get("name"),
            entity_state(s),
            (s.get("version") or {}).get("number"),
            s.get("description"),
        ]
        for s in items
    ]
    out(render.plain_table(["id", "name", "state", "version", "description"], rows))


def _show_source(api: StreamApi, source: dict[str, Any], output: str) -> None:
    from pushstream.client import render

    sinks = api.list_all(api.source_path(source["sourceId"]) + "/sinks", "sinks")
    if output == "json":
        out(render.json_text(source))
        return
    pairs: list[tuple[str, Any]] = [
        ("id", source.get("sourceId")),
        ("name", source.get("name")),
        ("description", source.get("description") or ""),
        ("type", source.get("type")),
        ("state", entity_state(source)),
        ("url", (source.get("http") or source.get("otlp") or {}).get("url")),
        ("version", version_text(source)),
        ("created", (source.get("created") or {}).get("at")),
    ]
    if sinks:
        pairs.append(("sinks", ", ".join(f"{s['sinkId']} → {(s.get('table') or {}).get('tableId')}" for s in sinks)))
    else:
        pairs.append(("sinks", "none (create one with: pushstream sinks create)"))
    out(fields_text(pairs))


@sources.command("create")
@click.argument("name")
@click.option("--id", "source_id", help="Source id (default: from the name, kebab-case).")
@click.option("--description", default="", help="What the source is for.")
@output_option
@api_options
@client_errors
def sources_create(
    *, name: str, source_id: str | None, description: str, output: str, url: str, token: str | None, branch: str
) -> None:
    """Create an HTTP source NAME and print it, with its ingest URL.

    \b
    Examples:
      pushstream sources create events
      pushstream sources create "Web Events" --id web --description "from the shop"
    """
    body: dict[str, Any] = {"type": "http", "name": name, "description": description}
    if source_id:
        body["sourceId"] = source_id
    with open_api(url, token, branch) as api:
        task = api.run_task("POST", api.sources_path(), json=body)
        created_id = str((task.get("outputs") or {}).get("sourceId") or source_id)
        created = api.source(created_id)
        note(f'source "{created["sourceId"]}" created')
        _show_source(api, created, output)


@sources.command("show")
@click.argument("source")
@output_option
@api_options
@client_errors
def sources_show(source: str, output: str, url: str, token: str | None, branch: str) -> None:
    """Show SOURCE: its state, ingest URL, version and sinks."""
    with open_api(url, token, branch) as api:
        _show_source(api, api.source(source), output)


@sources.command("delete")
@click.argument("source")
@click.option(
    "--purge",
    is_flag=True,
    help="Delete for good, with its sinks (default: a soft delete that `undelete` in the API can reverse).",
)
@api_options
@client_errors
def sources_delete(source: str, purge: bool, url: str, token: str | None, branch: str) -> None:
    """Delete SOURCE and its sinks."""
    with open_api(url, token, branch) as api:
        api.run_task("DELETE", api.source_path(source), params={"cascade": "true"} if purge else None)
    note(f'source "{source}" deleted' + (" for good" if purge else ""))
