"""The README's main job: `make quickstart` (python -m minigpt4.quickstart)."""
