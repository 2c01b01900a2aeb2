"""`runner_base`: wires model, data, optimisation, checkpoints and metrics into epochs of iterations.

The loop itself is in loop.py, checkpoints in checkpointing.py, optimisation in optimization.py,
metrics in metrics.py; this file only decides what happens when.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from minigpt4.common.dist import (
    barrier,
    get_rank,
    get_world_size,
    is_dist_avail_and_initialized,
    is_main_process,
)
from minigpt4.common.errors import ConfigError
from minigpt4.common.optims import build_lr_scheduler
from minigpt4.common.registry import registry
from minigpt4.datasets.mixing import build_train_loader, loader_settings
from minigpt4.runners import checkpointing, parallel
from minigpt4.runners.fast_paths import apply_fast_paths
from minigpt4.runners.loop import LoopState, train_epoch
from minigpt4.runners.metrics import RunMetrics
from minigpt4.runners.optimization import Stepper, amp_dtype, autocast, build_optimizer, build_scaler

logger = logging.getLogger(__name__)


def job_id_now() -> str:
    """The official job id: %Y%m%d%H%M with the last digit dropped."""
    return time.strftime("%Y%m%d%H%M")[:-1]


def resolve_device(run_cfg: Any) -> torch.device:
    wanted = str(run_cfg.get("device", "cuda"))
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        logger.warning("run.device is %s but CUDA is not available: training on CPU", wanted)
        return torch.device("cpu")
    if wanted.startswith("cuda") and is_dist_avail_and_initialized():
        return torch.device("cuda", int(run_cfg.get("gpu", 0)))
    return torch.device(wanted)


@registry.register_runner("runner_base")
class RunnerBase:
    def __init__(
        self, cfg: Any, task: Any, model: torch.nn.Module, datasets: dict, job_id: str | None = None
    ):
        self.cfg = cfg
        self.run_cfg = cfg.run_cfg
        self.task = task
        self.datasets = datasets
        self.device = resolve_device(self.run_cfg)
        self.job_id = str(self.run_cfg.get("job_id") or job_id or job_id_now())
        self.run_dir = Path(str(self.run_cfg.output_dir)).expanduser() / self.job_id
        registry.mapping["paths"]["output_dir"] = str(self.run_dir)
        registry.mapping["paths"]["result_dir"] = str(self.run_dir / "result")

        self.max_epoch = int(self.run_cfg.max_epoch)
        self.iters_per_epoch = self._iters_per_epoch()
        self.max_steps = int(self.run_cfg.get("max_iters") or self.max_epoch * self.iters_per_epoch)
        self.amp_dtype = amp_dtype(self.run_cfg)

        apply_fast_paths(model, self.run_cfg, {name: splits["train"] for name, splits in datasets.items()})
        self.unwrapped_model = model.to(self.device)
        self.model = parallel.wrap(model, self.run_cfg, self.device)
        self.optimizer = build_optimizer(self.model, self.run_cfg)
        self.scaler = build_scaler(self.amp_dtype)
        self.scheduler = build_lr_scheduler(self.optimizer, self.run_cfg, self.iters_per_epoch)
        self.stepper = Stepper(self.optimizer, self.scaler, self.run_cfg)
        batch_sizes, sample_ratios = loader_settings(cfg.datasets_cfg)
        self.loader = build_train_loader(
            {name: splits["train"] for name, splits in datasets.items()},
            batch_sizes,
            sample_ratios,
            num_workers=int(self.run_cfg.get("num_workers", 0)),
            seed=int(self.run_cfg.get("seed", 42)),
            rank=get_rank(),
            world_size=get_world_size(),
            pin_memory=self.device.type == "cuda",
            length_bucket_batches=int(self.run_cfg.get("length_bucket_batches", 0) or 0),
        )
        self.state = LoopState()
        self.config_dict = OmegaConf.to_container(cfg.config, resolve=True)
        self.metrics = RunMetrics(self.run_dir, self.run_cfg, self.config_dict)
        if is_main_process():
            self.run_dir.mkdir(parents=True, exist_ok=True)
            OmegaConf.save(cfg.config, self.run_dir / "config.yaml", resolve=True)

    def _iters_per_epoch(self) -> int:
        iters = self.run_cfg.get("iters_per_epoch")
        if iters is None:
            raise ConfigError(
                f"{self.cfg.cfg_path}: run.iters_per_epoch is missing; training is iteration-based (official "
                "configs set it, e.g. 5000 for stage 1)"
            )
        return int(iters)

    # -- checkpoints -----------------------------------------------------------------

    def _save(self, name: str, epoch_complete: bool) -> None:
        if parallel.is_fsdp(self.model):  # collective: every rank gathers the full tensors
            weights = parallel.full_trainable_state(self.model)
            optimizer_state = parallel.full_optimizer_state(self.model, self.optimizer)
        else:
            weights = checkpointing.trainable_state_dict(self.unwrapped_model)
            optimizer_state = self.optimizer.state_dict()
        if is_main_process():
            path = self.run_dir / name
            checkpointing.save_training_checkpoint(
                path,
                weights,
                optimizer_state,
                self.scaler,
                self.config_dict,
                epoch=self.state.epoch,
                global_step=self.state.global_step,
                iter_in_epoch=self.state.iter_in_epoch,
                epoch_complete=epoch_complete,
                data_state=self.loader.state_dict(),
            )
            self.state.last_checkpoint = str(path)
        barrier()

    def resume(self, path: str | Path) -> None:
        checkpoint = checkpointing.load_training_checkpoint(path)
        if parallel.is_fsdp(self.model):
            parallel.load_full_state(self.model, self.optimizer, checkpoint["model"], checkpoint["optimizer"])
        else:
            checkpointing.restore_model_weights(self.unwrapped_model, checkpoint["model"], str(path))
            self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scaler is not None and checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        epoch = int(checkpoint["epoch"])
        if checkpoint.get("format") != checkpointing.FORMAT:
            # an official checkpoint: weights, optimizer and epoch only, as the official runner resumes
            self.state = LoopState(
                epoch=epoch + 1, iter_in_epoch=0, global_step=(epoch + 1) * self.iters_per_epoch
            )
            logger.warning(
                "%s has no data position or RNG state: resuming at epoch %d, not bit-exact", path, epoch + 1
            )
            return
        complete = (
            bool(checkpoint.get("epoch_complete")) or checkpoint["iter_in_epoch"] >= self.iters_per_epoch
        )
        self.state = LoopState(
            epoch=epoch + 1 if complete else epoch,
            iter_in_epoch=0 if complete else int(checkpoint["iter_in_epoch"]),
            global_step=int(checkpoint["global_step"]),
            last_checkpoint=str(path),
        )
        if checkpoint.get("data") is not None:
            self.loader.load_state_dict(checkpoint["data"])
        checkpointing.set_rng_state(checkpoint["rng"])
        logger.info(
            "resumed from %s at epoch %d, iteration %d", path, self.state.epoch, self.state.iter_in_epoch
        )

    # -- training --------------------------------------------------------------------

    def compute_loss(self, samples: dict[str, Any]) -> torch.Tensor:
        """The task's training loss of one batch under the run's autocast (what each step backpropagates)."""
        with autocast(self.amp_dtype, self.device.type):
            return self.task.train_step(self.model, samples)

    def train(self) -> dict[str, Any]:
        start = time.time()
        resume_path = self.run_cfg.get("resume_ckpt_path")
        if resume_path:
            self.resume(resume_path)
        self.model.train()
        save_every = int(self.run_cfg.get("save_every_steps", 0) or 0)
        history = []
        while self.state.epoch < self.max_epoch and self.state.global_step < self.max_steps:
            averages = train_epoch(
                state=self.state,
                iters_per_epoch=self.iters_per_epoch,
                max_steps=self.max_steps,
                next_batch=lambda: next(self.loader),
                compute_loss=self.compute_loss,
                scheduler=self.scheduler,
                stepper=self.stepper,
                device=self.device,
                log_freq=int(self.run_cfg.get("log_freq", 50)),
                log_step=self.metrics.log_step,
                save_step_checkpoint=lambda: self._save(
                    f"checkpoint_step{self.state.global_step}.pth", False
                ),
                save_every_steps=save_every,
                show_progress=bool(self.run_cfg.get("progress_bar", True)),
            )
            epoch_done = self.state.iter_in_epoch >= self.iters_per_epoch
            record = {"epoch": self.state.epoch, **{f"train_{k}": v for k, v in averages.items()}}
            self.metrics.log_epoch(record)
            history.append(record)
            if epoch_done:
                self._save(f"checkpoint_{self.state.epoch}.pth", True)
                self.metrics.plot()
                self.state.epoch += 1
                self.state.iter_in_epoch = 0
        self.metrics.plot()
        summary = {
            "run_dir": str(self.run_dir),
            "epochs": history,
            "global_step": self.state.global_step,
            "last_checkpoint": self.state.last_checkpoint,
            "seconds": time.time() - start,
        }
        logger.info(
            "training finished in %.1f s; last checkpoint %s", summary["seconds"], summary["last_checkpoint"]
        )
        return summary
