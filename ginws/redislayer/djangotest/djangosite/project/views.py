from django.http import HttpResponse, HttpResponseNotAllowed
from django.views.decorators.csrf import csrf_exempt


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
