"""One module per parity family, named after the family; each defines `check(path) -> FamilyReport | list`."""
