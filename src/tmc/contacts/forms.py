"""Forms of the address book's pages; the rules themselves live in services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from tmc.contacts.importing import ENCODINGS, STANDARD_FIELDS
from tmc.contacts.models import Contact, Group, ImportJob
from tmc.contacts.rowwork import NAME_MAX
from tmc.contacts.services import field_key_check, field_key_from_header
from tmc.identity.models import User

NUMBER_ATTRS = {"autocomplete": "off", "inputmode": "tel"}
STANDARD_LABELS = {
    "number": "Mobile number",
    "name": "Full name",
    "first_name": "First name",
    "last_name": "Last name",
    "email": "Email",
}


def _groups_field(field: forms.Field, user: User) -> None:
    assert isinstance(field, forms.ModelChoiceField)
    field.queryset = Group.objects.for_user(user)


class ContactFilterForm(forms.Form):
    group = forms.ModelChoiceField(
        queryset=Group.objects.none(), required=False, empty_label="All groups"
    )
    number = forms.CharField(
        label="Find by number",
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={**NUMBER_ATTRS, "type": "search"}),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _groups_field(self.fields["group"], user)


def fields_as_text(fields: dict[str, str]) -> str:
    return "\n".join(f"{key}={value}" for key, value in fields.items())


class ContactForm(forms.Form):
    """One contact. When editing, an empty number keeps the current one.

    The current number is never an initial value: a user without the
    full-numbers permission must not find it in the page's source.
    """

    number = forms.CharField(
        label="Mobile number",
        max_length=32,
        help_text="For example 07400 123456 or +33 6 12 34 56 78.",
        widget=forms.TextInput(attrs=NUMBER_ATTRS),
    )
    name = forms.CharField(label="Name", max_length=NAME_MAX, required=False)
    email = forms.CharField(
        label="Email",
        max_length=254,
        required=False,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    custom_fields = forms.CharField(
        label="Custom fields",
        required=False,
        help_text="One a line, as key=value, for example shift_day=Saturday.",
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    groups = forms.ModelMultipleChoiceField(
        queryset=Group.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(
        self, *args: Any, user: User, editing: Contact | None, **kwargs: Any
    ) -> None:
        if editing is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": editing.name,
                    "email": editing.email,
                    "custom_fields": fields_as_text(editing.fields),
                    "groups": list(editing.groups.values_list("pk", flat=True)),
                },
            )
        super().__init__(*args, **kwargs)
        _groups_field(self.fields["groups"], user)
        if editing is not None:
            number = self.fields["number"]
            number.label = "New number"
            number.required = False
            number.help_text = "Leave empty to keep the current number."

    def clean_custom_fields(self) -> dict[str, str]:
        """Parse the key=value lines; the service checks keys and lengths."""
        parsed: dict[str, str] = {}
        text: str = self.cleaned_data["custom_fields"]
        for line_number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            key, equals, value = line.partition("=")
            key = key.strip()
            if not equals or not key:
                raise ValidationError(
                    f"Line {line_number} is not key=value (for example "
                    "shift_day=Saturday)."
                )
            if key in parsed:
                raise ValidationError(f"Line {line_number} repeats the key {key!r}.")
            parsed[key] = value.strip()
        return parsed


class GroupForm(forms.Form):
    name = forms.CharField(label="Name", max_length=80)
    description = forms.CharField(label="Description", max_length=200, required=False)


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="The first line names the columns; one contact a line below it.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    encoding = forms.ChoiceField(
        label="Saved as",
        choices=list(ENCODINGS.items()),
        initial="utf-8",
        help_text="Excel's “CSV UTF-8” is UTF-8; its plain “CSV” is Windows-1252.",
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        # Refused before it is read into memory; import_prepare checks again.
        limit = int(settings.TMC_IMPORT_MAX_BYTES)
        if upload.size > limit:
            raise ValidationError(
                f"The file is {upload.size / 1e6:.1f} MB; the most one import "
                f"takes is {limit / 1e6:.0f} MB. Split it into smaller files."
            )
        return upload


class ImportMappingForm(forms.Form):
    """Which column is which: a select per standard field, then the others.

    Columns the guess did not take for a standard field are offered as custom
    fields, ticked when their header makes a usable key.
    """

    group = forms.ModelChoiceField(
        label="Add everyone to a group",
        queryset=Group.objects.none(),
        required=False,
        empty_label="No group",
    )

    def __init__(self, *args: Any, user: User, job: ImportJob, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.job = job
        guess: dict[str, Any] = job.mapping or {}
        choices = [("", "Not in the file"), *((h, h) for h in job.headers)]
        for name in STANDARD_FIELDS:
            self.fields[name] = forms.ChoiceField(
                label=STANDARD_LABELS[name],
                choices=choices,
                required=name == "number",
                initial=guess.get(name, ""),
            )
        _groups_field(self.fields["group"], user)
        self.fields["group"].initial = job.group_id
        self.order_fields([*STANDARD_FIELDS, "group"])

        standard = {guess.get(name) for name in STANDARD_FIELDS}
        kept = {column: key for key, column in guess.get("fields", {}).items()}
        self.custom_columns = [
            (index, header)
            for index, header in enumerate(job.headers)
            if header not in standard
        ]
        for index, header in self.custom_columns:
            self.fields[f"keep_{index}"] = forms.BooleanField(
                label=f"Keep “{header}”", required=False, initial=header in kept
            )
            self.fields[f"key_{index}"] = forms.CharField(
                label=f"Field name for “{header}”",
                max_length=32,
                required=False,
                initial=kept.get(header) or field_key_from_header(header),
            )

    def standard_rows(self) -> list[forms.BoundField]:
        return [self[name] for name in (*STANDARD_FIELDS, "group")]

    def custom_rows(self) -> list[tuple[str, forms.BoundField, forms.BoundField]]:
        return [
            (header, self[f"keep_{index}"], self[f"key_{index}"])
            for index, header in self.custom_columns
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        keys: dict[str, str] = {}
        for index, header in self.custom_columns:
            if not cleaned.get(f"keep_{index}"):
                continue
            key = (cleaned.get(f"key_{index}") or "").strip()
            problem = "Name the field." if not key else field_key_check(key)
            if problem is None and key in keys:
                problem = f"{key!r} is already the name for “{keys[key]}”."
            if problem:
                self.add_error(f"key_{index}", problem)
            else:
                keys[key] = header
        return cleaned

    def mapping(self) -> dict[str, Any]:
        """The mapping ``import_map`` takes, from a valid form."""
        chosen: dict[str, Any] = {
            name: self.cleaned_data[name]
            for name in STANDARD_FIELDS
            if self.cleaned_data.get(name)
        }
        chosen["fields"] = {
            self.cleaned_data[f"key_{index}"].strip(): header
            for index, header in self.custom_columns
            if self.cleaned_data.get(f"keep_{index}")
        }
        return chosen


class OptOutForm(forms.Form):
    number = forms.CharField(
        label="Mobile number",
        max_length=32,
        help_text="This number will not be sent to again until it texts START.",
        widget=forms.TextInput(attrs=NUMBER_ATTRS),
    )
