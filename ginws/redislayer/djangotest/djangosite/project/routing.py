from django.urls import re_path

from project import consumers

# Group names allow ASCII letters, digits, '-', '_' and '.' (the rule channels_redis enforces).
NAME = r"[-.A-Za-z0-9_]+"

websocket_urlpatterns = [
    re_path(r"^ws/chat/(?P<room_name>" + NAME + r")/?$", consumers.ChatConsumer.as_asgi()),
    re_path(r"^ws/interop/(?P<group>" + NAME + r")/?$", consumers.InteropConsumer.as_asgi()),
]
