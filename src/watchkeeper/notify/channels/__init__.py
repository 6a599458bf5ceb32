"""Notification channels. Importing this package registers every built-in type: each module
in this folder that is not `base`, `registry` or private defines one type with `@register`."""

from watchkeeper.core.registry import autoload
from watchkeeper.notify.channels.base import Channel, ChannelConfigBase, Message, Outcome
from watchkeeper.notify.channels.registry import CHANNEL_TYPES, build_channel, config_models

autoload(__name__, __path__)

__all__ = [
    "CHANNEL_TYPES",
    "Channel",
    "ChannelConfigBase",
    "Message",
    "Outcome",
    "build_channel",
    "config_models",
]
