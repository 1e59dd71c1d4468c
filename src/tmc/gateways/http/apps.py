from django.apps import AppConfig


class HttpGatewayConfig(AppConfig):
    name = "tmc.gateways.http"
    label = "gateway_http"
    verbose_name = "HTTP gateway"
