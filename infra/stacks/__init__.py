"""Stateful (tables, queues, topic, keys) and stateless (Lambdas, API, schedules) stacks."""
