"""Notification channel types by their config `type`."""

from __future__ import annotations

from typing import Any

from watchkeeper.notify.channels.base import Channel, ChannelConfigBase, ChannelContext

CHANNEL_TYPES: dict[str, type[Channel[Any]]] = {}


def register(cls: type[Channel[Any]]) -> type[Channel[Any]]:
    CHANNEL_TYPES[cls.type] = cls
    return cls


def config_models() -> tuple[type[ChannelConfigBase], ...]:
    return tuple(cls.config_model for cls in CHANNEL_TYPES.values())


def build_channel(config: ChannelConfigBase, context: ChannelContext) -> Channel[Any]:
    return CHANNEL_TYPES[config.type](config, context)
