"""The config file: strict YAML, `${VAR}` expansion, the root model and its cross-references."""
