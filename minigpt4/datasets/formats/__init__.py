"""One dataset module per annotation format family; `minigpt4.datasets.builders` maps the 25 official names here."""
