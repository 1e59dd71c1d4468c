from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from tmc.api.api import urls as api_urls
from tmc.identity.access import public


@public
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("", include("tmc.accounts.urls")),
    path("", include("tmc.identity.urls")),
    path("messages/", include("tmc.messaging.urls")),
    path("contacts/", include("tmc.contacts.urls")),
    path("questions/", include("tmc.boomerang.urls")),
    path("simulator/", include("tmc.gateways.simulator.urls")),
    path("gateways/http/", include("tmc.gateways.http.urls")),
    path("gateways/vonage/", include("tmc.gateways.vonage.urls")),
    path("activity/", include("tmc.audit.urls")),
    path("notifications/", include("tmc.notifications.urls")),
    path("staff/", include("tmc.staff.urls")),
    path("api/v1/", api_urls()),
    path("api-keys/", include("tmc.api.urls")),
    path("2010-04-01/", include("tmc.api.twilio")),
    path("health/", health, name="health"),
]
