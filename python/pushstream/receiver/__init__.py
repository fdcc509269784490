"""The receiver: ``POST /stream/<projectId>/<sourceId>/<secret>`` into durable local
slices. :class:`~pushstream.receiver.node.ReceiverNode` holds the compiled routes and
open slice writers of a process; :class:`~pushstream.receiver.wsgi.ReceiverApp`
serves the endpoint in front of the Flask app."""

from pushstream.receiver.node import ReceiverNode
from pushstream.receiver.wsgi import ReceiverApp, ReceiverOptions

__all__ = ["ReceiverApp", "ReceiverNode", "ReceiverOptions"]
