"""antflow: an asyncio pipeline engine.

Items flow through stages; each stage is a pool of workers running async tasks, with
retries, backpressure, priorities, a StatusTracker event stream and polling dashboards.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
