"""What ``bench.pages`` serves under gunicorn: Roll Call, with a bare Flask page beside it.

``/_bare/`` is a separate, minimal Flask app in the same process (werkzeug's
``DispatcherMiddleware``): a ~5 KB Jinja table compiled once, no database, no sign-in, none of
Roll Call's request hooks. It is the ceiling a Flask page reaches on this machine and this
gunicorn, so each Roll Call page is reported as a share of it, measured in the same run.
"""
from __future__ import annotations

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from lms import create_app

BARE_TEMPLATE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Bare page</title></head>
<body><table><thead><tr><th>Badge</th><th>Name</th><th>Unit</th><th>Status</th></tr></thead><tbody>
{% for row in rows %}<tr><td>{{ row.badge }}</td><td>{{ row.name }}</td><td>{{ row.unit }}</td><td>{{ row.status }}</td></tr>
{% endfor %}</tbody></table></body></html>"""

#: Rows enough for a page of about 5 KB.
ROWS = [{"badge": 2000 + n, "name": f"Member {n} Lastname", "unit": "Patrol Division", "status": "Complete"}
        for n in range(60)]


def bare_app() -> Flask:
    """A Flask app with one page: a table rendered from a template compiled once."""
    bare = Flask("bare")
    template = bare.jinja_env.from_string(BARE_TEMPLATE)

    @bare.get("/")
    def page():
        return template.render(rows=ROWS)

    return bare


roll_call = create_app()
app = roll_call
app.wsgi_app = DispatcherMiddleware(roll_call.wsgi_app, {"/_bare": bare_app()})
