"""Population policy matching, deployed as its own Lambda (numpy stays out of the API package).

`columnar.py` evaluates policy conditions over whole populations with the semantics of
`chalicelib.domain.policy_rules`; `handler.py` runs the match segments."""
