"""Deadline escalation: ``deadline_at_risk`` and ``deadline_missed`` events from a
housekeeper (:mod:`.service`), with its table and SQL, and the overview's list of documents at
risk (:mod:`.console`)."""
