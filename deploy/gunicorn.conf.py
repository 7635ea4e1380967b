"""Gunicorn configuration for Roll Call (installed as /etc/rollcall/gunicorn.conf.py).

    gunicorn --config /etc/rollcall/gunicorn.conf.py

Settings of Roll Call itself come from the environment (/etc/rollcall/rollcall.env); this file
only says how gunicorn serves it. Command-line options override it (``--bind``, ``--workers``).
"""
import os

#: The app: the package's factory, so no file of the checkout is needed.
wsgi_app = "lms:create_app()"

#: nginx on the same host proxies to this address; never expose it directly.
bind = os.environ.get("ROLLCALL_BIND", "127.0.0.1:8000")
#: Workers share nothing but the database; about two per core. WEB_CONCURRENCY overrides.
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
worker_class = "sync"
#: A signature renders its receipt (about a second on a slow core) and big exports stream; a
#: worker silent for longer than this is stuck and is replaced.
timeout = 60
graceful_timeout = 30
keepalive = 5
#: Recycle workers now and then, so a slow leak in a library never grows for months.
max_requests = 2000
max_requests_jitter = 200

#: Only nginx on this host may say which client and scheme a request came from; Roll Call itself
#: trusts one proxy hop (LMS_PROXY_COUNT=1).
forwarded_allow_ips = "127.0.0.1,::1"

#: Roll Call logs one line per request itself, with the request id and the member id
#: (LMS_LOG_FORMAT=json for JSON lines); gunicorn's access log would only repeat it.
accesslog = None
errorlog = "-"
loglevel = "info"

#: gunicorn 25+ opens a control socket per user under ~/.gunicorn; the service does not use it.
control_socket_disable = True
