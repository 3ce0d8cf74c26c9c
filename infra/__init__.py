"""The production stack: a CDK app derived from chalicelib/topology.py and the Chalice app."""
