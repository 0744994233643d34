"""Structured JSON logs: one line per event, with the run, shard and attempt as keys."""

from aws_lambda_powertools import Logger

logger = Logger(service="sweeps")
