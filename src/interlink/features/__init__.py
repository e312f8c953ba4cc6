"""Features beyond the core, one package each; :mod:`.registry` lists them.

Each package holds what its feature has: ``tables.py`` (on the shared metadata; created by
migrations under ``store/migrations/``), ``queries.py`` (its SQL), ``service.py`` (its service,
``install(hub)`` and a typed accessor such as ``maintenance(hub) -> Maintenance``),
``api.py`` (a FastAPI router), ``console.py`` (console pages), ``cli.py`` (``register(app)``)
and pure modules named for their concept. The core never imports this package; the shells
(``web``, ``cli``, ``demo``) mount what the registry lists.
"""
