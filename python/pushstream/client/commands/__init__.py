"""The commands of the ``pushstream`` command line besides ``serve``, one module per
group or kind of command:

- :mod:`~.ingest`: ``ingest`` files or stdin into a source;
- :mod:`~.sources`, :mod:`~.sinks`: manage sources and sinks;
- :mod:`~.flush`: ``flush`` what waits for import;
- :mod:`~.nodes`: ``nodes`` list the nodes that serve the installation;
- :mod:`~.stats`: ``stats`` of sinks (levels, files, failed imports);
- :mod:`~.data`: ``tail`` a table and show ``rejected`` rows;
- :mod:`~.tokens`: ``token`` create, list, delete;
- :mod:`~.common`: exit codes, the API options and client, what the commands share.

The commands that call the API talk to a running server (``--url`` /
``PUSHSTREAM_URL``, token from ``PUSHSTREAM_API_TOKEN``); ``tail``, ``rejected``
and ``token`` read the data dir or the target database directly. Dependencies
beyond click are imported inside the commands, so loading the command line stays
cheap for ``serve``.
"""

from pushstream.client.commands.common import ExitCodeGroup, Failure, server_config
from pushstream.client.commands.data import rejected, tail
from pushstream.client.commands.flush import flush
from pushstream.client.commands.ingest import ingest
from pushstream.client.commands.nodes import nodes
from pushstream.client.commands.sinks import parse_column, sinks
from pushstream.client.commands.sources import sources
from pushstream.client.commands.stats import stats
from pushstream.client.commands.tokens import token

#: The commands :mod:`pushstream.cli` adds to the ``pushstream`` group, next to ``serve``.
COMMANDS = (ingest, tail, rejected, sources, sinks, flush, stats, nodes, token)

__all__ = ["COMMANDS", "ExitCodeGroup", "Failure", "parse_column", "server_config"]
