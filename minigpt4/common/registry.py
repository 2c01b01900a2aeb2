"""Name -> class tables for models, dataset builders, tasks, runners, processors and LR schedulers.

The official LAVIS-style API (`registry.register_model("minigpt4")`, `registry.get_model_class`,
`registry.list_models`, `registry.register_path`, `registry.get_path`, `registry.register`,
`registry.get`) keeps working, with two differences that users notice only when something is wrong:

* registering a name twice raises `RegistryError`;
* looking up an unknown name raises `RegistryError` listing what is registered and the
  closest name, where the official code returned None.

Registration has no import side effects: the first lookup of a kind imports the built-in
modules of that kind listed in `catalog.py`.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any

from minigpt4.common.catalog import BUILTIN_MODULES
from minigpt4.common.errors import RegistryError

KINDS = tuple(BUILTIN_MODULES)
_MISSING = object()


def closest_name(name: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    """The candidate most similar to `name`, or None when nothing is close."""
    matches = difflib.get_close_matches(str(name), list(candidates), n=1, cutoff=0.5)
    return matches[0] if matches else None


def unknown_name_message(what: str, name: str, known: list[str]) -> str:
    hint = closest_name(name, known)
    listed = ", ".join(sorted(known)) if known else "(nothing)"
    suggestion = f" (did you mean {hint!r}?)" if hint else ""
    return f"unknown {what} {name!r}{suggestion}; registered: {listed}"


class Registry:
    def __init__(self) -> None:
        self.mapping: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        self.mapping["paths"] = {}
        self.mapping["state"] = {}
        self._loaded: set[str] = set()

    # -- generic machinery -------------------------------------------------------------

    def _register(self, kind: str, name: str) -> Callable[[Any], Any]:
        def decorator(obj: Any) -> Any:
            table = self.mapping[kind]
            if name in table and table[name] is not obj:
                raise RegistryError(
                    f"{kind} name {name!r} is already registered to {table[name].__module__}."
                    f"{table[name].__qualname__}; pick another name"
                )
            table[name] = obj
            return obj

        return decorator

    def load_builtins(self, kind: str) -> None:
        """Import the built-in modules of `kind` once (they register themselves)."""
        if kind in self._loaded:
            return
        self._loaded.add(kind)
        for module in BUILTIN_MODULES[kind]:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
                raise RegistryError(
                    f"built-in {kind} module {module} is missing; the catalog in minigpt4/common/catalog.py "
                    "lists it, so the installation is incomplete"
                ) from exc

    def _get(self, kind: str, name: str) -> Any:
        self.load_builtins(kind)
        table = self.mapping[kind]
        if name not in table:
            message = unknown_name_message(kind.replace("_", " "), name, list(table))
            if (
                kind in BUILTIN_MODULES
            ):  # a new built-in class registers itself only once its module is listed
                message += (
                    f"; a new built-in {kind.replace('_', ' ')} is registered by its decorator once its module "
                    f'is listed under "{kind}" in minigpt4/common/catalog.py'
                )
            raise RegistryError(message)
        return table[name]

    def _list(self, kind: str) -> list[str]:
        self.load_builtins(kind)
        return sorted(self.mapping[kind])

    # -- official decorator names ------------------------------------------------------

    def register_model(self, name: str) -> Callable[[Any], Any]:
        return self._register("model", name)

    def register_builder(self, name: str) -> Callable[[Any], Any]:
        return self._register("builder", name)

    def register_task(self, name: str) -> Callable[[Any], Any]:
        return self._register("task", name)

    def register_runner(self, name: str) -> Callable[[Any], Any]:
        return self._register("runner", name)

    def register_processor(self, name: str) -> Callable[[Any], Any]:
        return self._register("processor", name)

    def register_lr_scheduler(self, name: str) -> Callable[[Any], Any]:
        return self._register("lr_scheduler", name)

    # -- official lookup names ---------------------------------------------------------

    def get_model_class(self, name: str) -> Any:
        return self._get("model", name)

    def get_builder_class(self, name: str) -> Any:
        return self._get("builder", name)

    def get_task_class(self, name: str) -> Any:
        return self._get("task", name)

    def get_runner_class(self, name: str) -> Any:
        return self._get("runner", name)

    def get_processor_class(self, name: str) -> Any:
        return self._get("processor", name)

    def get_lr_scheduler_class(self, name: str) -> Any:
        return self._get("lr_scheduler", name)

    def list_models(self) -> list[str]:
        return self._list("model")

    def list_builders(self) -> list[str]:
        return self._list("builder")

    def list_datasets(self) -> list[str]:
        return self._list("builder")

    def list_tasks(self) -> list[str]:
        return self._list("task")

    def list_runners(self) -> list[str]:
        return self._list("runner")

    def list_processors(self) -> list[str]:
        return self._list("processor")

    def list_lr_schedulers(self) -> list[str]:
        return self._list("lr_scheduler")

    # -- paths and state ---------------------------------------------------------------

    def register_path(self, name: str, path: str) -> None:
        paths = self.mapping["paths"]
        if name in paths and paths[name] != str(path):
            raise RegistryError(f"path {name!r} is already registered as {paths[name]!r}")
        paths[name] = str(path)

    def get_path(self, name: str) -> str:
        paths = self.mapping["paths"]
        if name not in paths:
            raise RegistryError(unknown_name_message("path", name, list(paths)))
        return paths[name]

    def register(self, name: str, obj: Any) -> None:
        """Store `obj` under a dotted name in the state tree, e.g. "configuration"."""
        node = self.mapping["state"]
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = obj

    def get(self, name: str, default: Any = _MISSING, no_warning: bool = False) -> Any:
        node: Any = self.mapping["state"]
        for part in name.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is _MISSING:
                    raise RegistryError(f"nothing is registered under state {name!r}")
                return default
            node = node[part]
        return node

    def unregister(self, name: str) -> Any:
        return self.mapping["state"].pop(name, None)


registry = Registry()
