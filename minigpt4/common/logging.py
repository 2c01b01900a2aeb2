"""Run logging: smoothed metrics with ETA, a progress bar, a JSON-lines log, and rank-0 logger setup."""

from __future__ import annotations

import datetime
import json
import logging
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import torch
from tqdm.auto import tqdm

from minigpt4.common.dist import all_reduce_mean, is_main_process

T = TypeVar("T")


def setup_logger(level: int = logging.INFO) -> None:
    """INFO on rank 0, WARNING elsewhere (official behaviour), one line per record."""
    logging.basicConfig(
        level=level if is_main_process() else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )


def progress(
    iterable: Iterable[T], desc: str = "", total: int | None = None, disable_bar: bool = False, **kwargs: Any
) -> Iterator[T]:
    """A tqdm bar (with ETA) on rank 0 in a terminal; silent elsewhere (CI logs, other ranks)."""
    disable = disable_bar or not is_main_process() or not sys.stderr.isatty()
    return tqdm(iterable, desc=desc, total=total, disable=disable, dynamic_ncols=True, **kwargs)


class SmoothedValue:
    """A value tracked over a window (median, average) and globally (mean over all updates)."""

    def __init__(self, window_size: int = 20, fmt: str = "{median:.4f} ({global_avg:.4f})") -> None:
        self.deque: deque[float] = deque(maxlen=window_size)
        self.total = 0.0
        self.count = 0
        self.fmt = fmt

    def update(self, value: float, n: int = 1) -> None:
        self.deque.append(value)
        self.count += n
        self.total += value * n

    def synchronize_between_processes(self) -> None:
        totals = all_reduce_mean(torch.tensor([self.count, self.total], dtype=torch.float64))
        self.count, self.total = round(totals[0].item()), float(totals[1].item())

    @property
    def median(self) -> float:
        return float(torch.tensor(list(self.deque)).median().item()) if self.deque else 0.0

    @property
    def avg(self) -> float:
        return sum(self.deque) / len(self.deque) if self.deque else 0.0

    @property
    def global_avg(self) -> float:
        return self.total / self.count if self.count else 0.0

    @property
    def value(self) -> float:
        return self.deque[-1] if self.deque else 0.0

    def __str__(self) -> str:
        return self.fmt.format(median=self.median, avg=self.avg, global_avg=self.global_avg, value=self.value)


class MetricLogger:
    """Meters by name, plus `log_every` that yields items and prints progress with ETA, times and memory."""

    def __init__(self, delimiter: str = "  ") -> None:
        self.meters: dict[str, SmoothedValue] = {}
        self.delimiter = delimiter

    def update(self, **values: float | torch.Tensor) -> None:
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                value = value.item()
            self.meters.setdefault(name, SmoothedValue()).update(float(value))

    def add_meter(self, name: str, meter: SmoothedValue) -> None:
        self.meters[name] = meter

    def __getattr__(self, name: str) -> SmoothedValue:
        meters = self.__dict__.get("meters", {})
        if name in meters:
            return meters[name]
        raise AttributeError(name)

    def __str__(self) -> str:
        return self.delimiter.join(f"{name}: {meter}" for name, meter in self.meters.items())

    def global_avg(self) -> dict[str, float]:
        return {name: meter.global_avg for name, meter in self.meters.items()}

    def synchronize_between_processes(self) -> None:
        for meter in self.meters.values():
            meter.synchronize_between_processes()

    def log_every(self, iterable: Iterable[T], print_freq: int, header: str = "", total: int | None = None):
        logger = logging.getLogger("minigpt4.train")
        total = total if total is not None else len(iterable)  # type: ignore[arg-type]
        iter_time, data_time = SmoothedValue(fmt="{avg:.4f}"), SmoothedValue(fmt="{avg:.4f}")
        start = end = time.time()
        for index, item in enumerate(iterable):
            data_time.update(time.time() - end)
            yield item
            iter_time.update(time.time() - end)
            if index % print_freq == 0 or index == total - 1:
                eta = datetime.timedelta(seconds=int(iter_time.global_avg * (total - index - 1)))
                parts = [
                    header,
                    f"[{index}/{total}]",
                    f"eta: {eta}",
                    str(self),
                    f"time: {iter_time}",
                    f"data: {data_time}",
                ]
                if torch.cuda.is_available():
                    parts.append(f"max mem: {torch.cuda.max_memory_allocated() / 2**20:.0f}")
                logger.info(self.delimiter.join(p for p in parts if p))
            end = time.time()
        logger.info("%s total time: %s", header, datetime.timedelta(seconds=int(time.time() - start)))


class JsonLinesLog:
    """Appends one JSON object per line; rank 0 only, flushed per record so a killed run keeps its log."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if is_main_process():
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        if not is_main_process():
            return
        with self.path.open("a") as handle:
            handle.write(json.dumps(record, default=_jsonable) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def max_memory_mb() -> float:
    """Peak CUDA memory, or this process's peak RSS on CPU (MB)."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
