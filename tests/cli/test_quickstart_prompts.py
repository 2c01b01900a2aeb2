"""The tiny MiniGPT-4 is trained on the prompt it is asked with: the quickstart's caption evaluation and the
demo send the Vicuna v0 chat prompt (system message, no space before `###Assistant:`); the official stage-2
config keeps the official training template."""

from omegaconf import OmegaConf

from minigpt4.cli.quickstart import CAPTION_PROMPT
from minigpt4.common.paths import REPO_ROOT
from minigpt4.conversation.templates import CONV_VISION_Vicuna0, prepare_texts

IMAGE_PROMPT = f"<Img><ImageHere></Img> {CAPTION_PROMPT}"


def test_quickstart_stage2_trains_on_the_chat_prompt_it_is_evaluated_with():
    config = OmegaConf.load(REPO_ROOT / "train_configs/shapes/minigpt4_stage2.yaml")
    trained = config.model.prompt_template.format(IMAGE_PROMPT)
    assert trained == prepare_texts([CAPTION_PROMPT], CONV_VISION_Vicuna0.copy())[0]


def test_official_stage2_keeps_the_official_template():
    config = OmegaConf.load(REPO_ROOT / "train_configs/minigpt4_stage2_finetune.yaml")
    assert config.model.prompt_template == "###Human: {} ###Assistant: "
