"""Composition root: the Chalice app, Powertools middleware applied once, and every Blueprint.

Keep this import light: it is every Lambda's cold start (see bench/cold_start.py).
"""

from __future__ import annotations

import os

# No pydantic plugins are used; without this, the first model class scans every installed
# distribution's entry points, a cost paid on every cold start.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


from chalice import Chalice
from chalice.app import CloudWatchEvent, Request

from chalicelib.entrypoints.http.errors import normalise_framework_error
from chalicelib.observability import logger, new_correlation_id, run_invocation
from chalicelib.settings import Settings, get_settings


def create_app(settings: Settings) -> Chalice:
    # Chalice logs through logging.getLogger(app_name): the same logger as Powertools' (same
    # service name), so its error lines are masked too. Chalice must not add its own handler,
    # and its debug setter lowers the shared logger to ERROR, so the level is set back after.
    app = Chalice(app_name=settings.service_name, configure_logs=False)
    # Errors must never be shown as stack traces, even locally.
    app.debug = False
    logger.setLevel(settings.log_level)

    @app.middleware("http")
    def normalise_errors(event, get_response):
        response = get_response(event)
        request_id = (
            response.headers.get("X-Request-Id")
            or (event.context or {}).get("requestId")
            or new_correlation_id()
        )
        return normalise_framework_error(response, request_id)

    @app.middleware("all")
    def lambda_invocation(event, get_response):
        """Lambda context and correlation id on the logs, cold-start metric, metrics flush."""
        if isinstance(event, Request):
            raw, context, path = event.to_original_event(), event.lambda_context, None
        else:
            raw, context = event.to_dict(), event.context
            # A schedule's id names the run; a batch's records bind their own ids.
            path = "id" if isinstance(event, CloudWatchEvent) else None
        return run_invocation(lambda _event, _context: get_response(event), raw, context, path)

    @app.middleware("all")
    def audit_unit_of_work(event, get_response):
        # The audit facts of one request or event are written together, in one call, at its end.
        from chalicelib.bootstrap import container

        unit = getattr(container().audit_log, "unit_of_work", None)
        if unit is None:
            return get_response(event)
        with unit():
            return get_response(event)

    from chalicelib.entrypoints.events import blueprints as event_blueprints
    from chalicelib.entrypoints.http import blueprints as http_blueprints

    for blueprint in http_blueprints(settings) + event_blueprints(settings):
        app.register_blueprint(blueprint)
    return app


app = create_app(get_settings())

# Each event handler is exported under its registered name, so Lambda's handler string is
# "app.<name>": importing app.py applies the middleware (metrics flush) to every invocation.
globals().update({source.name: app.handler_map[source.name] for source in app.event_sources})
