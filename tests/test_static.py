"""The admin's and the API docs' static files are served with DEBUG off, without a proxy."""

import pytest


@pytest.mark.parametrize(
    "path", ["/static/admin/css/base.css", "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css"]
)
def test_static_files_are_served_by_the_web_process(client, path, settings):
    assert settings.DEBUG is False
    response = client.get(path)
    assert response.status_code == 200
    assert b"".join(response.streaming_content)
