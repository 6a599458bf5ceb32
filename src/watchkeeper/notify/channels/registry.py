"""Notification channel types by their config `type`."""

from __future__ import annotations

from typing import Any

from watchkeeper.core.registry import Registry
from watchkeeper.notify.channels.base import Channel, ChannelConfigBase, ChannelContext

CHANNELS: Registry[Channel[Any]] = Registry("channel")
"""Every channel type; filled by `@register` when `watchkeeper.notify.channels` imports."""

CHANNEL_TYPES = CHANNELS.types
register = CHANNELS.register


def config_models() -> tuple[type[ChannelConfigBase], ...]:
    """The config model of every channel type (the members of the config's tagged union)."""
    return CHANNELS.models()


def build_channel(config: ChannelConfigBase, context: ChannelContext) -> Channel[Any]:
    """The channel that `config` describes."""
    return CHANNELS.get(config.type)(config, context)
