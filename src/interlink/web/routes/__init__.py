"""The API's own routers beyond ``web/api.py``: ``/docs`` (:mod:`.apidocs`) and the console
(:mod:`.console`). The features' routers come from :mod:`interlink.features.registry`.

Handlers reach the hub with ``Depends(hub_of)`` and check access with ``Depends(reader)``
(viewer), ``Depends(operator)`` or ``Depends(admin)`` from :mod:`interlink.web.deps`.
"""
