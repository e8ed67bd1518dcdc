"""Run a stage's work somewhere else (a process pool, Dask, Ray); keep control local.

Each function here wraps a plain function into an ``async def`` task that submits one call
per attempt and awaits it, so a stage using it keeps everything antflow does around a task:
ordering, retries, backpressure (the stage's ``workers`` cap the calls in flight), pause,
per-item history and the dashboards::

    from antflow.offload import on_dask, on_executor, on_ray

    Stage("Hash", workers=2, tasks=[on_executor(process_pool, sha256_file)])  # stdlib
    Stage("Parse", workers=16, tasks=[on_dask(client, parse)])  # pip install 'antflow[dask]'
    Stage("Embed", workers=4, tasks=[on_ray(embed, num_gpus=1)])  # pip install 'antflow[ray]'

Importing this module imports neither Dask nor Ray: each backend is imported when used.
"""

from antflow.offload._core import RemoteTraceback
from antflow.offload._dask import on_dask, release_worker
from antflow.offload._executor import on_executor
from antflow.offload._ray import on_ray
from antflow.offload._remote import RemoteError

__all__ = ["RemoteError", "RemoteTraceback", "on_dask", "on_executor", "on_ray", "release_worker"]
