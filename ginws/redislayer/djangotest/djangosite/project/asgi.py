"""ASGI entry point: plain Django for HTTP, Channels' URLRouter for WebSockets, and
ChannelNameRouter for the background workers that `manage.py runworker` runs.

There is deliberately no AllowedHostsOriginValidator and no AuthMiddlewareStack: test clients and
the load tool connect without a browser Origin and without a database-backed session.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402

from project import workers  # noqa: E402
from project.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
        "channel": ChannelNameRouter(
            {
                "thumbnails-generate": workers.ThumbnailConsumer.as_asgi(),
                "interop-jobs": workers.InteropWorker.as_asgi(),
            }
        ),
    }
)
