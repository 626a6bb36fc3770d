import json

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseNotAllowed
from django.views.decorators.csrf import csrf_exempt

from project import typedjson


def index(request):
    return HttpResponse("ginws interop project\n", content_type="text/plain")


@csrf_exempt
def login(request):
    """Stands in for the Go chat's sign-in so that the repository's load tool, which POSTs /login
    before opening a socket, can drive this server too. It sets a dummy cookie and checks nothing:
    the sockets of this project do not authenticate."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    name = request.POST.get("username", "")
    response = HttpResponse("ok\n", content_type="text/plain")
    response.set_cookie("interop_user", name or "anonymous", httponly=True, samesite="Lax")
    return response


@csrf_exempt
def send(request):
    """An ordinary Django view handing work to a background worker:
    channel_layer.send(channel, event), with {"channel": ..., "event": <typed JSON>} as the request
    body (see typedjson). Answers 202 once the send has returned."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        body = json.loads(request.body)
        channel = body["channel"]
        event = typedjson.from_typed(body["event"])
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ValueError('"event" must be an object with a string "type"')
    except (ValueError, KeyError, TypeError) as exc:
        return HttpResponseBadRequest("%s: %s\n" % (type(exc).__name__, exc))
    async_to_sync(get_channel_layer().send)(channel, event)
    return HttpResponse(status=202)
