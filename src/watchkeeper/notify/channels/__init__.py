"""Notification channels. Importing this package registers every built-in type: each module
in this folder that is not `base`, `registry` or private defines one type with `@register`."""

import importlib
import pkgutil

from watchkeeper.notify.channels.base import Channel, ChannelConfigBase, Message, Outcome
from watchkeeper.notify.channels.registry import CHANNEL_TYPES, build_channel, config_models

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and _module.name not in ("base", "registry"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "CHANNEL_TYPES",
    "Channel",
    "ChannelConfigBase",
    "Message",
    "Outcome",
    "build_channel",
    "config_models",
]
