"""Background workers for `manage.py runworker`, routed by ChannelNameRouter in asgi.py.

ThumbnailConsumer is the Django twin of the Go example examples/worker: for each
{"type": "generate", "id": N} on "thumbnails-generate" it prints "handled generate id=N" to stdout
and, when the message names a group in "notify", group-sends {"type": "thumbnail.done", "id": N}
to it.

InteropWorker lets a test see what a Django worker received on "interop-jobs": for each
{"type": "interop.job", "reply_to": CHANNEL, ...} it sends {"type": "interop.handled", "channel":
<the channel it serves>, "typed": <the message in typed JSON, as Python decoded it>, "message":
<the message itself>} to CHANNEL."""

from asgiref.sync import async_to_sync
from channels.consumer import AsyncConsumer, SyncConsumer

from project import typedjson


class ThumbnailConsumer(SyncConsumer):
    def generate(self, message):
        print("handled generate id=%d" % message["id"], flush=True)
        if message.get("notify"):
            async_to_sync(self.channel_layer.group_send)(
                message["notify"], {"type": "thumbnail.done", "id": message["id"]}
            )


class InteropWorker(AsyncConsumer):
    async def interop_job(self, message):
        await self.channel_layer.send(
            message["reply_to"],
            {
                "type": "interop.handled",
                "channel": self.scope["channel"],
                "typed": typedjson.dumps(message),
                "message": message,
            },
        )
