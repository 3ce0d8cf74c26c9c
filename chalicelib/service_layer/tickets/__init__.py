"""办不成事 ticket use cases: intake, transitions, lists, routing rules, the monthly report.

A change is stored together with its effects (deadline clocks, report counters, notifications,
the audit facts) in one transaction: the ticket put is conditional on the version read (of two
concurrent transitions one wins, the other is re-read and re-judged), and the ticket remembers
the last timeline entry whose effects were applied, which is then always its last one.

Tickets stored before that (or a change too large for one transaction) take the step-by-step
path: the change first, then its effects, each idempotent (clock keys, notification business
keys, count markers); entries after the applied one are applied again before the next change
of the ticket (and on an intake retry), so a crash between the two halves loses nothing.

One module per sub-capability, named as in `domain/tickets/` (shared deps in `common`): intake
(from people, staff, 12345 work orders and live help), transitions, effects (storing a change
with its effects, or step by step), reading (a ticket, lists, queues), routing, limits, report.
"""
