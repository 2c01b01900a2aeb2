import subprocess
import sys

import pytest

from minigpt4.common.catalog import BUILTIN_MODULES
from minigpt4.common.errors import RegistryError
from minigpt4.common.registry import Registry, registry


def test_decorator_registers_and_lookup_returns_class():
    reg = Registry()

    @reg.register_model("tiny_thing")
    class TinyThing:
        pass

    reg._loaded.add("model")  # no built-ins for a private registry
    assert reg.get_model_class("tiny_thing") is TinyThing
    assert reg.list_models() == ["tiny_thing"]


def test_duplicate_name_raises():
    reg = Registry()

    @reg.register_task("dup")
    class First:
        pass

    with pytest.raises(RegistryError, match="already registered"):

        @reg.register_task("dup")
        class Second:
            pass


def test_unknown_name_lists_registered_and_suggests_closest():
    reg = Registry()
    reg._loaded.add("processor")
    for name in ("blip_caption", "blip2_image_train", "blip2_image_eval"):
        reg.register_processor(name)(type(name, (), {}))
    with pytest.raises(RegistryError) as err:
        reg.get_processor_class("blip2_image_evl")
    message = str(err.value)
    assert "did you mean 'blip2_image_eval'" in message
    assert "blip_caption" in message and "blip2_image_train" in message


def test_unknown_model_names_the_catalog_file():
    from minigpt4.common.registry import registry

    with pytest.raises(RegistryError) as err:
        registry.get_model_class("minigpt5_not_yet")
    message = str(err.value)
    assert "minigpt4/common/catalog.py" in message and "minigpt_v2" in message


def test_paths_and_state():
    reg = Registry()
    reg.register_path("output_dir", "/tmp/x")
    assert reg.get_path("output_dir") == "/tmp/x"
    reg.register("a.b", 3)
    assert reg.get("a.b") == 3
    assert reg.get("a.missing", default=None) is None
    with pytest.raises(RegistryError):
        reg.get_path("nope")


def test_official_lookups_exist():
    for name in (
        "register_model",
        "register_builder",
        "register_task",
        "register_runner",
        "register_processor",
        "register_lr_scheduler",
        "get_model_class",
        "get_builder_class",
        "get_task_class",
        "get_runner_class",
        "get_processor_class",
        "get_lr_scheduler_class",
        "list_models",
        "list_datasets",
        "list_tasks",
        "list_runners",
        "list_processors",
        "list_lr_schedulers",
        "register_path",
        "get_path",
        "register",
        "get",
        "unregister",
    ):
        assert callable(getattr(registry, name)), name


def test_importing_package_imports_no_models():
    code = "import sys, minigpt4; print(sorted(m for m in sys.modules if m.startswith(('minigpt4.models', 'torch'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_lr_schedulers_come_from_catalog():
    assert registry.list_lr_schedulers() == [
        "linear_warmup_cosine_lr",
        "linear_warmup_linear_decay_lr",
        "linear_warmup_step_lr",
    ]


@pytest.mark.parametrize("kind", sorted(BUILTIN_MODULES))
def test_catalog_modules_register_their_kind(kind):
    """Every catalog module imports and registers at least one name of its kind, and nothing is unlisted."""
    before = set(registry.mapping[kind])
    registry.load_builtins(kind)
    assert registry.mapping[kind], f"catalog modules of {kind} registered nothing"
    for module in BUILTIN_MODULES[kind]:
        assert module in sys.modules
    for name, obj in registry.mapping[kind].items():
        if name in before:
            continue
        assert obj.__module__ in BUILTIN_MODULES[kind] or any(
            obj.__module__.startswith(m + ".") or obj.__module__.startswith(m.rsplit(".", 1)[0])
            for m in BUILTIN_MODULES[kind]
        ), f"{kind} {name} registered from {obj.__module__}, which the catalog does not list"
