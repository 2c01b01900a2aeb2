"""The demos' command line: the default tiny-model path (config built in memory, checkpoint loaded) and a real
`python demo*.py --cfg-path ... --port ...` process answering through gradio_client."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from PIL import Image

from minigpt4.cli.demo_launch import TinyModel, build_parser, load_chat, tiny_config_file
from minigpt4.models.checkpoint import trainable_state_dict, write_state_dict
from tests.cli.conftest import free_port
from tests.conversation.tiny import tiny_parts

REPO = Path(__file__).resolve().parents[2]


def _tiny_checkpoint(folder: Path, arch: str, model_type: str) -> TinyModel:
    model, _ = tiny_parts(arch, model_type)
    path = folder / f"{arch}_{model_type}.pth"
    write_state_dict(path, trainable_state_dict(model))
    return TinyModel(arch, model_type, str(path))


def _saved_folder(folder: Path, arch: str, model_type: str) -> TinyModel:
    from omegaconf import OmegaConf

    from minigpt4.api.hub import save_pretrained
    from minigpt4.common.config import model_default_path

    model, _ = tiny_parts(arch, model_type)
    cfg = OmegaConf.load(model_default_path(arch, model_type))
    save_pretrained(model, folder / "saved", config=cfg.model, preprocess=cfg.preprocess)
    return TinyModel(arch, model_type, str(folder / "saved"))


@pytest.mark.parametrize(
    ("arch", "model_type", "layout"),
    [
        ("minigpt4", "tiny_vicuna0", "file"),
        ("minigpt4", "tiny_vicuna0", "run_folder"),
        ("minigpt4", "tiny_vicuna0", "saved_folder"),
        ("minigpt_v2", "tiny", "file"),
    ],
)
def test_default_tiny_model_loads_its_checkpoint_on_cpu(tmp_path, arch, model_type, layout):
    if layout == "saved_folder":
        tiny = _saved_folder(tmp_path, arch, model_type)
    else:
        tiny = _tiny_checkpoint(tmp_path, arch, model_type)
        if layout == "run_folder":
            run = tmp_path / "run"
            run.mkdir()
            Path(tiny.checkpoint).rename(run / "checkpoint_3.pth")
            tiny = TinyModel(arch, model_type, str(run))
    session = load_chat(build_parser("x").parse_args([]), tiny)
    assert session.device.type == "cpu"
    assert (session.arch, session.model_type) == (arch, model_type)
    reference, _ = tiny_parts(arch, model_type)
    loaded = dict(session.chat.model.named_parameters())
    compared = 0
    for name, value in trainable_state_dict(reference, official_names=False).items():
        if name in loaded:
            assert loaded[name].detach().equal(value), f"{name} not loaded from the checkpoint"
            compared += 1
    assert compared > 10
    conv, images = session.template.copy(), []
    session.chat.upload_img(Image.new("RGB", (30, 20), (0, 200, 0)), conv, images)
    session.chat.encode_img(images)
    session.chat.ask("what is this?", conv)
    text, ids = session.chat.answer(conv, images, max_new_tokens=5)
    assert isinstance(text, str) and 1 <= len(ids) <= 5


@pytest.mark.slow
@pytest.mark.parametrize("script", ["demo.py", "demo_v2.py"])
def test_demo_process_serves_answers(tmp_path, script):
    arch, model_type = ("minigpt4", "tiny_vicuna0") if script == "demo.py" else ("minigpt_v2", "tiny")
    config = tiny_config_file(_tiny_checkpoint(tmp_path, arch, model_type))
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, script, "--cfg-path", str(config), "--device", "cpu", "--port", str(port)]
    command += ["--options", "model.max_txt_len=40"]
    log = tmp_path / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                assert server.poll() is None, f"{script} exited: {log.read_text()[-2000:]}"
                assert time.time() < deadline, f"{script} did not start: {log.read_text()[-2000:]}"
                time.sleep(0.5)
        image = tmp_path / "green.png"
        Image.new("RGB", (40, 30), (0, 200, 0)).save(image)
        result = Client(url, verbose=False).predict(
            handle_file(str(image)), "[vqa] what?", api_name="/answer"
        )
        text = result if script == "demo.py" else result[0]
        assert isinstance(text, str)
        assert f"http://127.0.0.1:{port}" in log.read_text()  # bound to localhost by default
    finally:
        server.terminate()
        server.wait(timeout=30)


UNTRUE_WEIGHT_CLAIMS = ("RANDOM", "random weights", "not in the file", "holds no")


@pytest.mark.slow
@pytest.mark.parametrize("script", ["demo.py", "demo_v2.py"])
def test_default_demo_log_says_once_where_weights_came_from_and_nothing_untrue(tmp_path, script):
    """`python demo*.py` on the quickstart models: the start-up log names each weight file once and claims no
    random part (the checkpoint holds them all); a few answers (streamed and not) add no warning lines."""
    from minigpt4.cli import demo_v1, demo_v2

    tiny = (demo_v1 if script == "demo.py" else demo_v2).TINY_MODEL
    if not tiny.location.exists():
        pytest.skip(f"{tiny.location} is missing: run `make quickstart`")
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    log = tmp_path / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, script, "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    image = str(REPO / "examples" / "shapes_world" / "red_circle.png")
    try:
        url = _wait_serving(server, port, log, script)
        started = log.read_text()
        client = Client(url, verbose=False)
        for _ in range(2):
            client.predict(handle_file(image), "[vqa] what color is the circle?", api_name="/answer")
            if script == "demo.py":
                client.predict(handle_file(image), [], api_name="/upload")
                client.predict("What is in the image?", [], 1, 0.1, api_name="/ask")
            else:
                editor = {"background": handle_file(image), "layers": [], "composite": None}
                client.predict(editor, "[vqa] what color is the circle?", [], 0.1, False, api_name="/send")
    finally:
        server.terminate()
        server.wait(timeout=30)
    lines = started.splitlines()
    untrue = [line for line in lines if any(claim in line for claim in UNTRUE_WEIGHT_CLAIMS)]
    assert untrue == [], untrue
    said = [line for line in lines if "weights: " in line]
    assert len(said) == 1, lines
    assert f"{tiny.checkpoint_path} -> " in said[0] and "llama_model" in said[0], said[0]
    after_start = log.read_text()[len(started) :]
    noise = [line for line in after_start.splitlines() if "Warning" in line or line.startswith("WARNING")]
    assert noise == [], noise


def _wait_serving(server: subprocess.Popen, port: int, log: Path, script: str) -> str:
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return url
        except OSError:
            assert server.poll() is None, f"{script} exited: {log.read_text()[-2000:]}"
            assert time.time() < deadline, f"{script} did not start: {log.read_text()[-2000:]}"
            time.sleep(0.5)
