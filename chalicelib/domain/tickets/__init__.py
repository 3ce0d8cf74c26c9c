"""办不成事 tickets: the aggregate, its state machine, routing rules and duplicate detection.

Pure: no I/O, no clock reads. Each transition takes the acting principal and the instant and
answers the changed ticket with one new timeline entry. The entry carries the side effects the
transition asks for (clocks to start, stop, pause; who to notify; report counters), so the
service layer can apply them after the ticket is stored, and apply them again after a crash,
from the stored entry alone.

States (`TRANSITIONS` is the table, with the roles allowed for each event):
submitted → dispatched → accepted ⇄ awaiting_person → replied → called_back → closed;
unsatisfied call-back or the person's reopen (within 15 working days of the reply) → reopened;
transfer to another department (→ dispatched); 退单 only with a reason the dispatcher accepts
(→ submitted) or rejects (→ the state before).

One module per part, named as the use cases' (`service_layer/tickets/`): ticket (the aggregate,
its vocabulary and timeline), transitions (the state machine), intake, limits (the rule set of
deadlines) and routing (the rules that pick a department).
"""
