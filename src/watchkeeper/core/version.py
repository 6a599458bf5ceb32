"""The release, defined once: the package metadata, `--version`, the API and the pages read it."""

__version__ = "0.1.0"
