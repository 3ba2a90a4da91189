"""WAQI (aqicn.org) API simulator: ``simulator`` (:class:`WaqiSimulator`, ``serve``, ``samples``, the ``waqi``
click command), built from ``data`` (deterministic hourly readings), ``stations`` (the default stations),
``clock`` (the simulated clock tests drive) and ``routes`` (resources), on the shared
:mod:`naia_backfill.dev.simulators.httpserver`.
"""
