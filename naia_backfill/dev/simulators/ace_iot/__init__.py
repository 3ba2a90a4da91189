"""ACE IoT API simulator: ``simulator`` (:class:`AceIotSimulator`, ``serve``, the ``ace-iot`` click command),
built from ``data`` (points, sites, samples), ``model`` (the vectorised sample generator and paging scan),
``sites`` (the default sites), ``wire`` (``point_samples`` JSON) and ``routes`` (resources), on the shared
:mod:`naia_backfill.dev.simulators.httpserver`. ``bench`` measures how fast it serves the large site.
"""
