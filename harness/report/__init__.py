"""What a gate run reports: ``metrics`` writes ``metrics.json`` from the run record (and the terminal
table), ``render`` turns it into ``report.md`` / ``report.html`` from ``templates/report.j2``, ``plots``
draws its figures, ``tracking`` logs it to MLflow."""
