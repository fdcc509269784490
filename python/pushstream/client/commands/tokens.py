"""``pushstream token``: create, list and delete API tokens in the data dir's
catalog (directly, not through the API: it works while the server runs, and before
any token exists)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pushstream.client.commands.common import DATA_DIR, DATA_DIR_HELP, server_config

if TYPE_CHECKING:
    from pushstream.catalog import Catalog
    from pushstream.catalog.models import Role


@click.group()
def token() -> None:
    """Manage API tokens (stored as hashes in the data dir; works while the server runs).

    \b
    Examples:
      pushstream token create --data-dir ./data --description CI
      pushstream token list --data-dir ./data
      pushstream token delete --data-dir ./data 2
    """


def _catalog(data_dir: Path | None, cluster: str | None) -> Catalog:
    from pushstream.wiring import open_catalog

    return open_catalog(server_config(data_dir=data_dir, cluster=cluster))


#: The catalog of a cluster instead of the data dir's (as ``serve --cluster``).
_CLUSTER_OPTION = click.option(
    "--cluster",
    help="The PostgreSQL control plane of a cluster, as given to serve --cluster (env PUSHSTREAM_CLUSTER).",
)


@token.command("create")
@click.option("--data-dir", type=DATA_DIR, help=DATA_DIR_HELP)
@_CLUSTER_OPTION
@click.option("--description", default="", help="What the token is for (shown in version history as tokenDesc).")
@click.option(
    "--role",
    type=click.Choice(["admin", "guest"]),
    default="admin",
    show_default=True,
    help="admin may change the configuration, guest may only read it.",
)
@click.option("--user-id", default="", help="User id shown in the history of changes.")
@click.option("--user-name", default="", help="User name shown in the history of changes.")
def token_create(  # noqa: PLR0917 (click passes the options by name)
    data_dir: Path | None, cluster: str | None, description: str, role: Role, user_id: str, user_name: str
) -> None:
    """Create a token and print it (it cannot be shown again).

    \b
    Examples:
      export PUSHSTREAM_API_TOKEN=$(pushstream token create --data-dir ./data --description "CI")
      pushstream token create --data-dir ./data --role guest --description dashboard
    """
    catalog = _catalog(data_dir, cluster)
    try:
        created, secret = catalog.create_token(description, role, user_id, user_name)
    finally:
        catalog.close()
    click.echo(f"token {created.token_id} ({created.role}) created", err=True)
    click.echo(secret)


@token.command("list")
@click.option("--data-dir", type=DATA_DIR, help=DATA_DIR_HELP)
@_CLUSTER_OPTION
def token_list(data_dir: Path | None, cluster: str | None) -> None:
    """List tokens (ids, roles and descriptions; the tokens themselves are not stored).

    \b
    Example:
      pushstream token list --data-dir ./data
    """
    catalog = _catalog(data_dir, cluster)
    try:
        tokens = catalog.list_tokens()
    finally:
        catalog.close()
    if not tokens:
        click.echo("no tokens", err=True)
        return
    click.echo(f"{'ID':<6} {'ROLE':<6} {'CREATED':<25} DESCRIPTION")
    for item in tokens:
        click.echo(f"{item.token_id:<6} {item.role:<6} {item.created_at:<25} {item.description}")


@token.command("delete")
@click.option("--data-dir", type=DATA_DIR, help=DATA_DIR_HELP)
@_CLUSTER_OPTION
@click.argument("token_id")
def token_delete(data_dir: Path | None, cluster: str | None, token_id: str) -> None:
    """Delete (revoke) a token by its id (see `pushstream token list`).

    \b
    Example:
      pushstream token delete --data-dir ./data 2
    """
    catalog = _catalog(data_dir, cluster)
    try:
        deleted = catalog.delete_token(token_id)
    finally:
        catalog.close()
    if not deleted:
        click.echo(f'token "{token_id}" not found', err=True)
        sys.exit(1)
    click.echo(f"token {token_id} deleted", err=True)
