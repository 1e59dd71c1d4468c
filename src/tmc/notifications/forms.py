from __future__ import annotations

from typing import Any

from django import forms

from tmc.notifications.catalogue import Channel
from tmc.notifications.services import PreferenceRow

CHANNELS = (Channel.IN_APP, Channel.EMAIL, Channel.DESKTOP, Channel.DIGEST)


def field_name(kind: str, channel: Channel) -> str:
    return f"{kind}__{channel.value}"


class PreferencesForm(forms.Form):
    """One checkbox per kind and channel; security channels shown, locked on."""

    def __init__(self, rows: list[PreferenceRow], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rows = rows
        for row in rows:
            kind = row.notice.kind.value
            for channel in CHANNELS:
                locked = channel in row.locked or channel in row.unavailable
                self.fields[field_name(kind, channel)] = forms.BooleanField(
                    required=False,
                    initial=channel in row.channels,
                    disabled=locked,
                    label=f"{row.notice.kind.label}: {channel.label}",
                )

    def table(self) -> list[dict[str, Any]]:
        """Rows for the template: each kind with its three checkboxes."""
        return [
            {
                "notice": row.notice,
                "cells": [self[field_name(row.notice.kind.value, c)] for c in CHANNELS],
            }
            for row in self.rows
        ]

    def wanted(self) -> dict[str, set[Channel]]:
        return {
            row.notice.kind.value: {
                channel
                for channel in CHANNELS
                if self.cleaned_data.get(field_name(row.notice.kind.value, channel))
            }
            for row in self.rows
        }


class LowCreditForm(forms.Form):
    threshold = forms.IntegerField(
        min_value=0,
        max_value=10_000_000,
        label="Alert the Controllers when the credit balance falls below",
    )
