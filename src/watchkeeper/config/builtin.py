"""The built-in config used when no file is given: watch this host and Watchkeeper itself."""

from __future__ import annotations

from watchkeeper.config.model import Config


def builtin_config(
    listen: str = "127.0.0.1:8080", db_url: str = "sqlite:///watchkeeper.db"
) -> Config:
    probe = Config.model_validate({"server": {"listen": listen}})
    return Config.model_validate(
        {
            "server": {"listen": listen},
            "storage": {"url": db_url},
            "checks": [
                {
                    "name": "host",
                    "type": "system",
                    "description": "CPU, memory and disk of / on this host",
                    "interval": "30s",
                    "cpu": {"warn": 90, "crit": 98},
                    "memory": {"warn": 90, "crit": 95},
                    "disk": [{"path": "/", "warn": 90, "crit": 95}],
                },
                {
                    "name": "watchkeeper-api",
                    "type": "http",
                    "description": "Watchkeeper's own liveness probe",
                    "url": f"{probe.server.base_url()}/health/live",
                    "interval": "30s",
                    "timeout": "5s",
                },
            ],
        }
    )
