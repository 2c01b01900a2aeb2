"""`python -m minigpt4.tools.parity DIR`: compare our implementation with fixtures made by the official code.

The fixture format is described in `tests/fixtures/parity/README.md`. Each family has one module in
`families/` named after it; a family without a module is reported as not implemented.
"""
