"""A Django view that relays an upstream event stream to the browser."""

from django.conf import settings
from django.http import StreamingHttpResponse
from django.urls import path

from ssesync import Event, EventSource, SSEError

KEEP_ALIVE = ": keep-alive\n\n"


def relay(upstream_url, idle):
    source = EventSource(upstream_url)
    try:
        for item in source.stream(idle=idle):
            # None: the upstream was silent for `idle` seconds. Writing
            # a keep-alive is how the view learns its client has gone.
            yield KEEP_ALIVE if item is None else item.to_sse()
    except SSEError as exc:
        yield Event(str(exc), event="upstream-error").to_sse()
    finally:
        source.close()


def events(request):
    response = StreamingHttpResponse(
        relay(settings.SSE_UPSTREAM_URL, settings.SSE_IDLE),
        content_type="text/event-stream",
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer it
    return response


urlpatterns = [path("events", events)]
