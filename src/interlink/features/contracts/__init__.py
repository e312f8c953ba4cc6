"""Contracts and scenarios: versions, check and publish (:mod:`.registry`), the schema diff
(:mod:`.diff`), who is affected (:mod:`.impact`), the contract linter (:mod:`.lint`) and
scenario coverage (:mod:`.coverage`). Validation at intake and the scenario matcher are core
(:mod:`interlink.validation`, :mod:`interlink.scenarios`)."""
