"""The pure billing core: no I/O, no clock, no database (an import-linter contract checks it).

Values in, values out: typed entries, rules and the ledger's view become a plan that the
shell (``worker`` services, ``connectors``) carries out.
"""
