"""Export MiniGPT models to other folder formats and back (`python -m minigpt4.tools.export`)."""

from minigpt4.tools.export.hf_blip2 import ExportReport, export_hf_blip2
from minigpt4.tools.export.import_blip2 import ImportReport, import_hf_blip2

__all__ = ["ExportReport", "ImportReport", "export_hf_blip2", "import_hf_blip2"]
