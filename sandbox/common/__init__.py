"""Pieces every sandbox shares: fault injection, request counts and the ``/_sandbox`` admin
routes (``faults``, ``admin``)."""
