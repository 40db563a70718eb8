"""billsync: turns tracked time in Jira and GitHub into billables on Kukkingu draft invoices.

The service layer lives here: configuration, the state store, the pure billing core
(``worker.core``, added by the billing engine) and the command line.
"""

__version__ = "0.1.0"
