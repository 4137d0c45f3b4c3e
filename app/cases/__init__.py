"""Cases and complaints: the workflow (stages, events), SLA clocks in working time
(``sla``), the escalation ladder and its scheduler (``escalation``, ``scheduler``), and
the REST routes (``routes``, ``/cases``)."""
