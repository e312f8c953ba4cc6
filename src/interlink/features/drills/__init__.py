"""Drills: rehearse flows end to end against sandbox downstreams with scripted faults.

- :mod:`.spec`: the drill file (YAML) turned into a typed model, errors as ``file:line``;
- :mod:`.sandbox`: a real loopback HTTP server per target system, scripted along a timeline;
- :mod:`.run`: one rehearsal on a fresh temporary store, with the real engine and clock;
- :mod:`.report`: expectations, timeline chart and coverage as terminal, HTML and Markdown;
- :mod:`.tables`: the record of drill runs that readiness reads.
"""

from __future__ import annotations
