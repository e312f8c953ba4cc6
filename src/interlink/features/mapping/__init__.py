"""Mapping: a flow's ``map:`` turns our document into the body its downstream expects.

- :mod:`.formats`: the value formats (decimal to fen, times as ``yyyyMMdd`` and kin); pure.
- :mod:`.maps`: a map compiled once into a function over the document (JMESPath for paths,
  our own small layer for code tables, formats and scenarios); pure.
- :mod:`.check`: what ``interlink check`` reports about maps (paths the contract does not
  define, codes without a table entry), each with its place in the topology file; pure.
- :mod:`.service`: :func:`~.service.install` (``hub.hooks.body_maps``) and the preview the
  API, the CLI and the console show; :mod:`.api`, :mod:`.cli`, :mod:`.console`: its shells.

Which downstream field reads which document field (lineage) is the topology model's own
knowledge (:meth:`interlink.config.MapSettings.lineage`), so contract impact analysis reads
it without importing this feature.
"""
