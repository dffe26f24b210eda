"""Configs: the schemas behind ``conf/`` and the rules values must meet."""

from learnai.config.rules import ConfigError, check_literal, exit_with, validate, validate_job
from learnai.config.schema import LearnaiConfig, register_configs

__all__ = [
    "ConfigError",
    "LearnaiConfig",
    "check_literal",
    "exit_with",
    "register_configs",
    "validate",
    "validate_job",
]
