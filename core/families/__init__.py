"""Model families, each in one place (spandrel's per-architecture modules).

A family module holds everything known about one kind of network: the keys that tell it
apart (declared `KeyCondition`s), how its hyperparameters are read from tensor shapes, its
multiply-accumulate count, its torch modules and its legacy key spellings. `registry.py`
lists them in detection order; adding a family is one new module and one line there.
"""
