"""File exchange: deliveries to ``transport: file`` systems go out in batch files, to a folder
or over SFTP, and come back delivered or dead through the downstream's result files
(docs/transports.md).

- :mod:`.fileformat`: batch files written and result files read (CSV, fixed-width, any
  encoding); :mod:`.schedule`: when files are cut and results due; pure functions.
- :mod:`.places`: a folder or an SFTP folder, written atomically.
- :mod:`.service`: :class:`~.service.FileExchange` (cut, send, fetch results, report a
  missing result) and its hooks.
- :mod:`.tables`, :mod:`.queries`: its tables and SQL; :mod:`.api`, :mod:`.cli`: its shells.
"""
