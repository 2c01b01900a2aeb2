"""`python -m tests.evaluation.run_stub_eval EVAL_DIR SAVE_PATH [names]`, also under torchrun: evaluates the
stub model on the eval world with the real image processor, sharded across the processes."""

from __future__ import annotations

import sys

from minigpt4.common.dist import destroy_distributed, init_distributed_mode, is_main_process
from minigpt4.evaluation.sharded_runs import evaluate_jobs, prepare_jobs
from minigpt4.evaluation.summary import update_summary
from minigpt4.processors.image import Blip2ImageEvalProcessor
from tests.evaluation.eval_world import StubModel, eval_config


def main(eval_dir: str, save_path: str, names: str = "") -> None:
    init_distributed_mode()
    selected = tuple(names.split(",")) if names else None
    config = eval_config(eval_dir, batch_size=3, names=selected)
    jobs = prepare_jobs(config, list(config))
    results = evaluate_jobs(
        jobs, StubModel(), Blip2ImageEvalProcessor.from_config({"image_size": 32}), save_path
    )
    if is_main_process():
        update_summary(save_path, results)
    destroy_distributed()


if __name__ == "__main__":
    main(*sys.argv[1:])
