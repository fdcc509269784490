"""Several nodes as one installation: a node's name, the nodes that are live,
the election of the one coordinator that imports, and configuration changes
relayed to every node's receivers.

A single node needs none of it beyond its name; with shared staging
(``--staging``) and a shared control plane (``--cluster``) every node runs the
API, the receiver and its own uploads, and one of them imports."""
