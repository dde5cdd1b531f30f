"""ASGI middleware of the api, one per module (installed by `app.create_app`)."""
