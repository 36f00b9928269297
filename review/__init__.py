"""The reviewers' console and JSON API (``badgewatch serve``): FastAPI with server-rendered pages.

``app`` builds the application; ``web`` holds the pages, ``api`` the JSON API, ``decisions`` the
two-level approval, ``evidence`` what the review page shows of a capture, ``accounts`` and ``security``
who may do what.
"""
