"""Request and response models, one module per protocol as in ``routes/``; the field types they
share are in ``fields``. Validation lives here, with messages a client can act on.

Native endpoints (``/api/analytics/*``, ``/api/sessions/*``) reject unknown fields, so a typo such
as ``distinctId`` is a 400 instead of silently lost data. The compatibility endpoints (``/track``
and PostHog's) ignore fields they do not use, because their SDKs send more than we store.
"""
