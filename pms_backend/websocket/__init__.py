"""The websocket server (``/ws/v1/events/``): who may listen to which topics of the
outbox, and the guards of its sockets. It reads the outbox; the outbox knows nothing of
it."""
