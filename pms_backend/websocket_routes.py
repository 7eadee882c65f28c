"""Websocket routes; the event consumer joins them in "Event delivery"."""

websocket_urlpatterns: list = []
