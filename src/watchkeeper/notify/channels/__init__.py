"""Notification channels. Importing this package registers every built-in type."""

from watchkeeper.notify.channels import webhook
from watchkeeper.notify.channels.base import Channel, ChannelConfigBase, Message, Outcome
from watchkeeper.notify.channels.registry import CHANNEL_TYPES, build_channel, config_models

__all__ = [
    "CHANNEL_TYPES",
    "Channel",
    "ChannelConfigBase",
    "Message",
    "Outcome",
    "build_channel",
    "config_models",
    "webhook",
]
