"""Switchboard routing core: pure, deterministic, standard library only.

Events in (``routing.events``), commands out (``routing.commands``), time passed in as
``now`` (float seconds since the epoch).  See ``routing.engine`` for the theory of
operation.
"""
