"""Customers: CRM writes (customers, contact numbers, products), look-ups, and the
interactions every handled call leaves on the customer's record.

- ``interactions``: the statements the outcome writer runs in its own batch transaction,
  so a call's contact is written exactly once (unique ``call_id``), whatever is replayed.
- ``service``: create / update / search, one transaction per request, problem+json errors.
- ``routes``: the REST routes (``/customers``, ``/calls/{call_id}/link``).
"""
