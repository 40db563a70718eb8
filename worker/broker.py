"""kombu's Redis transport, with one defect of kombu 5.7.0 mended: a worker must not die when
Redis restarts while it holds unacknowledged messages.

The defect (no kombu release has a fix yet; related: celery/kombu#582, #970): when the broker
connection breaks, Celery's consumer first *collects* the connection and then closes it.

1. Collecting closes the channels. Closing the task channel while its BRPOP is outstanding
   first reads the BRPOP reply, which raises a connection error (Redis is gone); kombu
   swallows it, and the channel stays open with its unacknowledged messages. Collecting
   then detaches the transport: ``transport.client = None``.
2. Closing the connection closes that channel again. Now it restores its unacknowledged
   messages, which needs a Redis client, whose connection parameters come from
   ``transport.client``: ``AttributeError: 'NoneType' object has no attribute 'hostname'``.
   That is no connection error, so Celery calls it unrecoverable and the worker exits.

It happens when the task channel both holds an unacknowledged message and has a BRPOP out:
a prefetch limit above the running tasks (concurrency above 1, a countdown retry waiting in
the worker). The mend: a channel keeps the connection settings it was created with, and uses
them when its transport has been detached. The restore then either works (Redis is back: the
message is requeued) or raises an ordinary connection error that Celery rides out; either
way the message stays in Redis' unacked hash until it is restored or acknowledged.

:func:`worker.tasks.configure` selects :data:`TRANSPORT` for the ``redis://`` broker URL.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from kombu.transport import redis as kombu_redis

TRANSPORT = "worker.broker:Transport"


class Channel(kombu_redis.Channel):
    def __init__(self, connection: Any, *args: Any, **kwargs: Any) -> None:
        # ``connection`` is the kombu Transport; its ``client`` the kombu Connection
        self._settings_at_creation = SimpleNamespace(
            client=connection.client, default_port=connection.default_port, cycle=None
        )
        super().__init__(connection, *args, **kwargs)  # type: ignore[no-untyped-call]

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport is not None and transport.client is not None:
            return dict(super()._connparams(asynchronous=asynchronous))  # type: ignore[no-untyped-call]
        # the transport was detached (step 1 above): the settings this channel started with
        self.connection = self._settings_at_creation
        try:
            return dict(super()._connparams(asynchronous=asynchronous))  # type: ignore[no-untyped-call]
        finally:
            self.connection = transport


class Transport(kombu_redis.Transport):
    Channel = Channel
