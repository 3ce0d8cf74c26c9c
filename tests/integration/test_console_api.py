"""What the console needs of the app itself: its files served from chalicelib/console, nothing
else reachable through the file route, and `/me` naming the centres a manager runs."""

from __future__ import annotations

import pytest

from chalicelib.entrypoints.http.console import FOLDER

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "path,content_type,file",
    [
        ("/console", "text/html", "index.html"),
        ("/console/index.html", "text/html", "index.html"),
        ("/console/console.js", "text/javascript", "console.js"),
        ("/console/console.css", "text/css", "console.css"),
        ("/console/chart.umd.min.js", "text/javascript", "chart.umd.min.js"),
    ],
)
def test_console_files_are_served_without_a_token(api, path, content_type, file):
    result = api.get(path)
    assert result.status == 200
    assert result.headers["Content-Type"].startswith(content_type)
    assert result.text == (FOLDER / file).read_text(encoding="utf-8")


def test_the_vendored_chart_library_keeps_its_licence_header(api):
    head = api.get("/console/chart.umd.min.js").text[:200]
    assert "Chart.js v4." in head and "MIT License" in head


@pytest.mark.parametrize("name", ["missing.js", "..", "console.py", "%2e%2e%2fsettings.py"])
def test_nothing_but_the_console_files_is_served(api, name):
    result = api.get(f"/console/{name}")
    assert result.status == 404
    assert result.json["code"] in ("console_file_not_found", "not_found")


@pytest.fixture
def centres(container):
    from local.seed_bookings import seed_bookings

    seed_bookings(container)


def test_me_names_the_centres_a_manager_runs_and_none_for_anyone_else(api, centres):
    assert api.get("/me", user="u-manager-district").json["managed_centre_ids"] == ["qp-district"]
    assert api.get("/me", user="u-window-wang").json["managed_centre_ids"] == []
    assert api.get("/me", user="u-supervisor-zhao").json["managed_centre_ids"] == []
