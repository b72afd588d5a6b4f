"""Prometheus metrics: the instruments in a registry of their own (`Metrics`), the port wrappers that feed them
(`MeteredEventStore`, `MeteredChatModel`), the HTTP endpoint that serves them, and CONVO_METRICS_LISTEN."""
