"""PI Web API simulator: ``simulator`` (:class:`PiSimulator`, ``serve``, ``main``), built from ``data``
(deterministic history), ``timed_values`` (TimedValue JSON), ``time_strings`` (PI time strings), ``routes``
(resources) and ``server`` (HTTP). ``bench`` measures it; ``recording`` records the JSON responses in
``recorded/`` (package data) that the connector's unit tests read.
"""

from pathlib import Path

RECORDED_DIR = Path(__file__).parent / "recorded"
