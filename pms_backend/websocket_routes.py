"""Websocket routes."""

from django.urls import path

from pms_backend.websocket.consumers import EventsConsumer

websocket_urlpatterns = [path("ws/v1/events/", EventsConsumer.as_asgi())]
