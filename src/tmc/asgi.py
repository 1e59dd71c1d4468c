import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tmc.settings")
# Under ASGI each request runs its synchronous code in a thread and context
# of its own, and Django never hands one request's connection to the next:
# kept-open connections would pile up, one new PostgreSQL process a request,
# until the server refuses clients. A pool shared by the process's requests
# hands each one a connection already open and takes it back at the end.
os.environ.setdefault("TMC_DB_POOL_SIZE", "8")

application = get_asgi_application()
