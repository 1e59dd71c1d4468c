from __future__ import annotations

from django import forms


class PackageForm(forms.Form):
    # Checked again by staff_package_save, which says what is wrong.
    name = forms.CharField(max_length=80)
    credits = forms.IntegerField(
        min_value=0, help_text="Credits added when an organisation buys it."
    )
    credits_per_part = forms.IntegerField(
        label="Credits per part",
        min_value=1,
        initial=1,
        help_text="For destinations without a price of their own below.",
    )
    monthly_allowance = forms.IntegerField(
        label="Monthly allowance (parts)",
        min_value=0,
        initial=0,
        help_text="Parts free each calendar month, used before credits.",
    )


class PackagePriceForm(forms.Form):
    country_code = forms.CharField(
        label="Country calling code",
        max_length=4,
        help_text="e.g. 44 for the United Kingdom, 33 for France, 1 for North America.",
    )
    credits_per_part = forms.IntegerField(label="Credits per part", min_value=1)
