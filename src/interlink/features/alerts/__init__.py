"""Alerts: routing events to people by role.

- :mod:`.rules`: the rules, aggregation and routing; pure.
- :mod:`.notify`: the channels (e-mail, webhook, ...).
- :mod:`.service`: :class:`~.service.Alerter`, the loop beside the engine that reads events
  in order and records and sends the messages.
"""
