"""The OpenAPI document and the docs page, served without any other origin."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client


def test_the_schema_is_openapi_3_1_with_every_field_described(db: None) -> None:
    schema: dict[str, Any] = Client().get("/api/v1/openapi.json").json()

    assert schema["openapi"].startswith("3.1")
    assert schema["components"]["securitySchemes"]["ApiKeyAuth"]["scheme"] == "bearer"
    missing = []
    for name, component in schema["components"]["schemas"].items():
        for field, spec in component.get("properties", {}).items():
            if "description" not in spec:
                missing.append(f"{name}.{field}")
            elif "examples" not in spec and "$ref" not in spec and "items" not in spec:
                missing.append(f"{name}.{field} (example)")
    assert missing == []


def test_the_docs_page_loads_only_our_own_files(db: None) -> None:
    response = Client().get("/api/v1/docs")

    assert response.status_code == 200
    page = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources
    assert all(s.startswith("/") for s in sources), sources
    assert "<script>" not in page.replace(" ", "")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    for source in sources:
        if source.startswith("/static/"):
            assert Client().get(source).status_code == 200, source
