"""A Flask view that relays an upstream event stream to the browser."""

from flask import Flask, Response

from ssesync import Event, EventSource, SSEError

KEEP_ALIVE = ": keep-alive\n\n"


def create_app(upstream_url, idle=15.0):
    app = Flask(__name__)

    @app.route("/events")
    def events():
        def relay():
            source = EventSource(upstream_url)
            try:
                for item in source.stream(idle=idle):
                    if item is None:
                        # The upstream has been silent for `idle`
                        # seconds: a keep-alive keeps proxies from
                        # closing the connection, and writing it is
                        # how the view learns that its client left.
                        yield KEEP_ALIVE
                    else:
                        yield item.to_sse()  # an Event or a Comment
            except SSEError as exc:
                # The upstream failed for good: tell the browser.
                yield Event(str(exc), event="upstream-error").to_sse()
            finally:
                source.close()  # the client left, or the upstream ended

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return Response(
            relay(), mimetype="text/event-stream", headers=headers
        )

    return app
