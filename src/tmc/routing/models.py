"""Which gateways carry which numbers, and what the platform knows of them.

Routes are configuration, changed by level-3 staff. Health and throughput
are shared state: every worker process reads and writes the same rows, so
one worker's view of a failing gateway is every worker's.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

PREFIX_VALIDATOR = RegexValidator(
    r"^(\+[1-9][0-9]{0,5})?$",
    "A prefix is + and up to six digits of an E.164 number, or empty for "
    "the default route.",
)


class Route(models.Model):
    """The gateways, most preferred first, for numbers starting ``prefix``.

    The longest prefix that matches a number wins; the empty prefix is the
    default route.
    """

    prefix = models.CharField(
        max_length=7, unique=True, blank=True, validators=[PREFIX_VALIDATOR]
    )
    gateways = models.JSONField(
        default=list, help_text="Gateway names in priority order."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["prefix"]

    def __str__(self) -> str:
        return f"{self.prefix or '(default)'} -> {', '.join(self.gateways)}"


class GatewayHealth(models.Model):
    """A gateway's recent failures, and until when workers should skip it."""

    name = models.CharField(max_length=40, unique=True)
    down_until = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    total_failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "gateway health"

    def __str__(self) -> str:
        return self.name


class ThroughputBucket(models.Model):
    """A gateway's token bucket, when there is no Redis to keep it.

    ``stamp`` is a Unix time in seconds: plain arithmetic in the conditional
    UPDATE that takes a token, on SQLite and PostgreSQL alike.
    """

    name = models.CharField(max_length=40, unique=True)
    tokens = models.FloatField()
    stamp = models.FloatField()

    def __str__(self) -> str:
        return self.name
