"""kfp-bot: the service, its configuration and its command line.

`bot/` wires and serves: it builds the concrete adapters, hands them to the handlers as ports
and exposes everything over HTTP and the `kfp-bot` command. Nothing here runs at import time.
"""

__version__ = "0.1.0"
