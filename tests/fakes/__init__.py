"""In-memory fakes of the service layer's ports (chalicelib/service_layer/ports/), for use-case
tests that need only storage semantics. mypy checks each against its Protocol (`_checked` at the
end of each module), so a port that changes breaks its fake at type-check time, not in a test."""
