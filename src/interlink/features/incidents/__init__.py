"""The incident register: the one official record of problems (:mod:`.service`), fed by the
alerts' messages."""
