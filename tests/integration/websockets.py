"""Channels' websocket communicator with waits a busy machine cannot outrun."""

from __future__ import annotations

from channels.testing import WebsocketCommunicator

# How long a test waits for the consumer to answer: to accept, send a frame, close, or
# finish after a disconnect. Channels' default is 1 s, which CI's busy 2-core machine can
# take for work done in milliseconds here (it once took 1.2 s to schedule five calls). A
# wait returns as soon as its answer comes, so passing tests take no longer; only checks
# that nothing arrives (``receive_nothing``) keep a short timeout of their own.
WAIT = 30.0


class Communicator(WebsocketCommunicator):
    async def connect(self, timeout=WAIT):
        return await super().connect(timeout)

    async def receive_output(self, timeout=WAIT):
        return await super().receive_output(timeout)

    async def receive_from(self, timeout=WAIT):
        return await super().receive_from(timeout)

    async def receive_json_from(self, timeout=WAIT):
        return await super().receive_json_from(timeout)

    async def disconnect(self, code=1000, timeout=WAIT):
        return await super().disconnect(code, timeout)
