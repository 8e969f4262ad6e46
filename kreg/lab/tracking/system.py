"""What a trial cost the machine: MLflow's system metrics on the trial's run, while it trains.

MLflow's system metrics machinery (``SystemMetricsMonitor``'s CPU and GPU
monitors and its batched logger) samples on a thread of this process for a
run id (no ``mlflow.start_run`` needed) and logs under ``system/``, which the
run page shows in its "System metrics" tab. kreg keeps its CPU and memory
monitor (system-wide ``cpu_utilization_percentage``,
``system_memory_usage_megabytes``/``_percentage``) and a GPU monitor where
MLflow finds one, drops the disk and network monitors, and adds this
process's own figures (``process_cpu_utilization_percentage``, of all cores,
and ``process_memory_rss_megabytes``): with parallel workers on one machine
the system-wide figures mix every worker's trials, the process's do not.

Sample ``k`` (step ``k``) is the mean over the ``k``-th interval;
``stop`` logs the last, partial one, so a trial shorter than the interval
still has a point. Cost: see docs/guide/answer-and-mlflow.md ("In the MLflow UI").
"""

from __future__ import annotations

import logging

DEFAULT_INTERVAL_S = 2.0


def _process_monitor():
    import psutil
    from mlflow.system_metrics.metrics.base_metrics_monitor import BaseMetricsMonitor

    class ProcessMonitor(BaseMetricsMonitor):
        """This process's CPU (percent of all cores) and resident memory."""

        def __init__(self):
            super().__init__()
            self._process = psutil.Process()
            self._cores = psutil.cpu_count() or 1
            self._process.cpu_percent()  # the first call starts the interval

        def collect_metrics(self):
            self._metrics["process_cpu_utilization_percentage"].append(self._process.cpu_percent() / self._cores)
            self._metrics["process_memory_rss_megabytes"].append(self._process.memory_info().rss / 1e6)

        def aggregate_metrics(self):
            return {k: round(sum(v) / len(v), 1) for k, v in self._metrics.items() if v}

    return ProcessMonitor()


_GPU_PRESENT: bool | None = None  # learnt at the first trial: MLflow looks for NVIDIA, then AMD GPUs


def _gpu_monitors(monitor) -> list:
    global _GPU_PRESENT
    if _GPU_PRESENT is False:
        return []
    found = monitor._initialize_gpu_monitor()
    _GPU_PRESENT = found is not None
    return [found] if found is not None else []


class TrialMonitor:
    """Samples CPU and memory every ``interval_s`` seconds into run ``run_id``'s ``system/*`` metrics.

    MLflow's monitor classes and batched logger, with a loop of kreg's own:
    sample ``k`` (step ``k``) is the mean over the ``k``-th interval, taken
    and logged at its end (MLflow's loop logs the sample taken at an
    interval's start, reads the run from the store at every sample, and
    drops the last partial interval); ``stop`` logs that last interval.
    """

    def __init__(self, run_id: str, tracking_uri: str, interval_s: float = DEFAULT_INTERVAL_S):
        import threading

        from mlflow.system_metrics.metrics.cpu_monitor import CPUMonitor
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # a line per trial otherwise
        monitor = SystemMetricsMonitor(run_id, sampling_interval=interval_s, tracking_uri=tracking_uri)
        monitor.monitors = [CPUMonitor(), _process_monitor()]
        monitor.monitors += _gpu_monitors(monitor)
        monitor.collect_metrics()  # starts psutil's CPU intervals now: the first sample covers this trial only
        for m in monitor.monitors:
            m.clear_metrics()
        self._monitor, self._interval = monitor, float(monitor.sampling_interval)
        self._thread = threading.Thread(target=self._loop, daemon=True, name="kreg-system-metrics")
        self._thread.start()

    def _sample(self) -> None:
        monitor = self._monitor
        monitor.collect_metrics()
        monitor.publish_metrics(monitor.aggregate_metrics())

    def _loop(self) -> None:
        while not self._monitor._shutdown_event.wait(self._interval):
            try:
                self._sample()
            except Exception:  # the store refusing a write: the trial's own logging says so; stop sampling
                return

    def stop(self) -> None:
        """Stops sampling; logs the last (partial) interval and whatever MLflow's logger holds. Idempotent."""
        if self._thread is None:
            return
        thread, self._thread = self._thread, None
        self._monitor._shutdown_event.set()
        thread.join()
        try:
            self._sample()
            self._monitor.mlflow_logger.flush()
        except Exception:  # a store that stopped accepting writes: the trial's own writes say so, not this
            pass


def start(run_id: str, tracking_uri: str, interval_s: float | None) -> TrialMonitor | None:
    """A running monitor, or None when switched off (``interval_s`` None) or psutil is missing."""
    if interval_s is None:
        return None
    try:
        import psutil  # noqa: F401  (MLflow's system metrics need it)
    except ImportError:
        return None
    try:
        return TrialMonitor(run_id, tracking_uri, interval_s)
    except Exception:  # a machine psutil cannot read: the trial trains without system metrics
        return None
