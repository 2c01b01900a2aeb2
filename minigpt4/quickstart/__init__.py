"""`python -m minigpt4.quickstart` (what `make quickstart` runs): the command name only; the steps are in
`minigpt4/cli/quickstart.py`."""
