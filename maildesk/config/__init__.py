"""maildesk.toml + environment -> frozen dataclasses.

Every problem is reported as one sentence naming the key, so an admin can
fix a bad config without reading code. Secrets are read from the
environment or a file, never echoed back. `sections` holds the dataclasses,
`reading` reads and type-checks the file, `checks` judges the values; this
face hands on what the rest of maildesk uses.
"""
from maildesk.config.checks import placeholders, warnings
from maildesk.config.reading import load, parse_config, read_secret
from maildesk.config.sections import Config, ConfigError, SecurityConfig

__all__ = ["Config", "ConfigError", "SecurityConfig", "load", "parse_config", "placeholders", "read_secret", "warnings"]
