"""The name of a node: it starts the id of each of its receiver processes
(``<node name>.<pid>-<random>``), so that the parts of slices a node wrote are
known to be its own to upload, whichever node looks at them."""

from __future__ import annotations

import re
import secrets
import socket
from pathlib import Path

from pushstream.config import NODE_NAME

#: Where a node keeps the name it made for itself (a restarted node is the same node).
NODE_NAME_FILE = "node-name"


def node_name(data_dir: Path, configured: str | None = None) -> str:
    """``configured`` (``--node-name``), else the name kept in the data dir, else
    a new one from the host name (kept for the next start)."""
    if configured:
        return configured
    path = data_dir / NODE_NAME_FILE
    try:
        kept = path.read_text().strip()
    except FileNotFoundError:
        kept = ""
    if NODE_NAME.fullmatch(kept):
        return kept
    host = re.sub(r"[^A-Za-z0-9_-]+", "-", socket.gethostname()).strip("-")[:50] or "node"
    made = f"{host}-{secrets.token_hex(3)}"
    data_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(made + "\n")
    temporary.replace(path)
    return made


def receiver_id(name: str, pid: int) -> str:
    """The id of one receiver process of node ``name``."""
    return f"{name}.{pid}-{secrets.token_hex(2)}"


def node_prefix(name: str) -> str:
    """What the ids of node ``name``'s receiver processes start with."""
    return f"{name}."
