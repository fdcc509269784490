"""``pushstream nodes``: the nodes that serve the installation."""

from __future__ import annotations

import click

from pushstream.client.commands.common import Failure, api_options, client_errors, open_api, out, output_option


@click.command()
@output_option
@api_options
@client_errors
def nodes(*, output: str, url: str, token: str | None, branch: str) -> None:
    """List the nodes of the installation: this server alone, or every node of a
    cluster (``serve --cluster``), live ones first, with the one that coordinates
    the imports and the config revision each node's receivers follow.

    Exits with 3 when a node is gone without a clean stop (it died: the files it
    wrote to wait until it is started again).

    \b
    Examples:
      pushstream nodes
      pushstream nodes -o json
    """
    from pushstream.client import render

    with open_api(url, token, branch) as api:
        result = api.request("GET", "/v1/nodes")
    listed = result.get("nodes") or []
    if output == "json":
        out(render.json_text(result))
    else:
        rows = [
            [
                n.get("name"),
                n.get("host"),
                "live" if n.get("alive") else "stopped" if n.get("stopped") else "gone",
                "yes" if n.get("coordinator") else "",
                n.get("configRevision"),
                n.get("heartbeatAt"),
                n.get("apiUrl"),
            ]
            for n in listed
        ]
        out(render.plain_table(["node", "host", "state", "coordinator", "revision", "heartbeat", "api"], rows))
    gone = [n.get("name") for n in listed if not n.get("alive") and not n.get("stopped")]
    if gone:
        raise Failure(f"{len(gone)} node(s) gone without a clean stop: {', '.join(str(g) for g in gone)}", 3)
