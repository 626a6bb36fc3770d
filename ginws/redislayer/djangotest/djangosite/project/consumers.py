import json

from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer

from project import typedjson


class ChatConsumer(WebsocketConsumer):
    """The Channels tutorial's chat consumer, unchanged in behaviour: join chat_<room>,
    group_send what the client types as a chat.message event, write each chat.message event to
    the socket as {"message": ...}.

    Two small departures, both for the tools that drive it: the JSON is written without spaces
    (the load tool looks for `"message":"`), and a frame that is not {"message": <string>} is
    answered with an error instead of killing the consumer."""

    def connect(self):
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room_group_name = "chat_%s" % self.room_name
        async_to_sync(self.channel_layer.group_add)(self.room_group_name, self.channel_name)
        self.accept()

    def disconnect(self, close_code):
        async_to_sync(self.channel_layer.group_discard)(self.room_group_name, self.channel_name)

    def receive(self, text_data=None, bytes_data=None):
        try:
            message = json.loads(text_data)["message"]
            if not isinstance(message, str):
                raise TypeError("message must be a string")
        except (TypeError, ValueError, KeyError) as exc:
            self.send(text_data=json.dumps({"error": "send {\"message\": \"...\"}: %s" % exc}))
            return
        async_to_sync(self.channel_layer.group_send)(
            self.room_group_name, {"type": "chat.message", "message": message}
        )

    def chat_message(self, event):
        self.send(text_data=json.dumps({"message": event["message"]}, separators=(",", ":")))


class InteropConsumer(AsyncWebsocketConsumer):
    """Lets a test see and drive the Django side of a shared channel layer.

    On connect it joins the group named in the URL and sends {"kind": "hello", "channel": <its
    channel name>}. Every channel layer event it receives, whatever its type, is written to the
    socket as {"kind": "event", "event": <typed JSON>} (see typedjson). The client may send
      {"id": ..., "cmd": "group_send", "group": "...", "event": {...}}
      {"id": ..., "cmd": "send", "channel": "...", "event": {...}}
      {"id": ..., "cmd": "group_add" | "group_discard", "group": "..."}
    with the event in typed JSON; each command is answered with {"kind": "ok", "id": ...} once the
    layer call has returned, or {"kind": "error", "id": ..., "error": "..."}. Bad input is answered
    with an error, never a crash."""

    async def connect(self):
        self.group = self.scope["url_route"]["kwargs"]["group"]
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data=json.dumps({"kind": "hello", "channel": self.channel_name}))

    async def disconnect(self, close_code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def dispatch(self, message):
        if str(message.get("type", "")).startswith("websocket."):
            return await super().dispatch(message)
        try:
            frame = json.dumps(
                {"kind": "event", "event": typedjson.to_typed(message)},
                allow_nan=False,
                separators=(",", ":"),
            )
        except (TypeError, ValueError) as exc:
            frame = json.dumps({"kind": "error", "error": "cannot forward event: %s" % exc})
        await self.send(text_data=frame)

    async def receive(self, text_data=None, bytes_data=None):
        cmd_id = None
        try:
            if text_data is None:
                raise ValueError("binary frames are not commands")
            cmd = json.loads(text_data)
            if not isinstance(cmd, dict):
                raise ValueError("a command is a JSON object")
            cmd_id = cmd.get("id")
            await self.run(cmd)
        except Exception as exc:  # a bad command must not end the consumer
            await self.send(
                text_data=json.dumps(
                    {"kind": "error", "id": cmd_id, "error": "%s: %s" % (type(exc).__name__, exc)}
                )
            )
            return
        await self.send(text_data=json.dumps({"kind": "ok", "id": cmd_id}))

    async def run(self, cmd):
        name = cmd.get("cmd")
        layer = self.channel_layer
        if name in ("group_send", "send"):
            event = typedjson.from_typed(cmd.get("event"))
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                raise ValueError('"event" must be an object with a string "type"')
            if name == "group_send":
                await layer.group_send(cmd["group"], event)
            else:
                await layer.send(cmd["channel"], event)
        elif name == "group_add":
            await layer.group_add(cmd["group"], self.channel_name)
        elif name == "group_discard":
            await layer.group_discard(cmd["group"], self.channel_name)
        else:
            raise ValueError("unknown cmd %r" % (name,))
