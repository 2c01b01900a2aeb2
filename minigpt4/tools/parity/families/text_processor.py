"""Parity family `text_processor`: `blip_caption` under every recorded setting, compared exactly."""

from __future__ import annotations

import json
from pathlib import Path

from minigpt4.processors.text import BlipCaptionProcessor
from minigpt4.tools.parity.report import FamilyReport


def check(path: Path) -> FamilyReport:
    report = FamilyReport("text_processor")
    data = json.loads(Path(path).read_text())
    processors = [
        BlipCaptionProcessor.from_config(setting["from_config_cfg"]) for setting in data["settings"]
    ]
    for index, case in enumerate(data["cases"]):
        for setting_index, (processor, expected) in enumerate(zip(processors, case["outputs"])):
            what = f"case {index} {case['input'][:40]!r} setting {setting_index}"
            try:
                report.exact(what, expected, processor(case["input"]))
            except Exception as exc:  # a crash is a failed case, reported with its input
                report.error(what, exc)
    return report
