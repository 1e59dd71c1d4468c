from django.http import HttpRequest, JsonResponse
from django.urls import include, path


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("", include("tmc.accounts.urls")),
    path("", include("tmc.identity.urls")),
    path("messages/", include("tmc.messaging.urls")),
    path("health/", health, name="health"),
]
