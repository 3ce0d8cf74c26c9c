"""Application use cases: the guide, pre-fill, submission, machine pre-review (the queue
consumer), 补正 and 容缺 supplements, department and automatic decisions, monthly KPIs.

Clocks (the deadline engine, one per application and kind, keyed so retries start one):
- "application_acceptance": from submission, 5 working days to accept or list what is missing
  (行政许可法); a 补正 request pauses it, the supplement resumes it; stopped on acceptance.
- "application_promised": the department's promised limit, from acceptance to the decision.
- "application_supplement": 容缺 supplement deadline (≤ the promised limit); past it, the
  application is terminated.

One module per sub-capability (shared deps and helpers in `common`): guide, prefill,
submission (by the person or staff on their behalf), reading, prereview, decisions (and the
repair of a decision's effects), supplements (and the supplement deadline), forwarding (items
decided in another region), kpis.
"""
