"""Go-live readiness: a checklist per flow (:mod:`.checklist`), reading the drills' record
and the alerts' test message."""
