"""`docker`: restart a container over the Docker Engine API's unix socket (to be built)."""

from __future__ import annotations

from watchkeeper.recovery.actions.base import ACTIONS, NotYetImplemented
from watchkeeper.recovery.config import DockerSpec


@ACTIONS.register
class DockerRecovery(NotYetImplemented):
    """Will POST /containers/{id}/restart on `socket`."""

    type = "docker"
    config_model = DockerSpec
    what = "the Engine API client over the unix socket is still to be written"
