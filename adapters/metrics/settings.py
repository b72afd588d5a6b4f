"""Where the metrics are served in polling mode (the webhook server serves them at /metrics in webhook mode)."""

from __future__ import annotations

from adapters.env_settings import EnvSettings, HostPort, setting


class MetricsSettings(EnvSettings):
    """The metrics server's address."""

    listen: HostPort | None = setting("CONVO_METRICS_LISTEN", default=None)
    """Host and port of a server of GET /metrics of its own (e.g. 127.0.0.1:9464); None: no such server."""
