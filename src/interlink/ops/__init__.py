"""Operations features that turn operating rules into software: maintenance windows and
deadline escalation (this package), alerts and the incident register (their own modules).

- :mod:`.windows`: window, notice, peak-hour and observed-traffic arithmetic, and the
  iCalendar feed; pure functions over plain data.
- :mod:`.maintenance`: the maintenance service (create, check, list, cancel; hold, release,
  notify, report the drain).
- :mod:`.deadlines`: the deadline watch (at risk, missed).
- :mod:`.tables`: their tables.
"""
