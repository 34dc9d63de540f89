"""What the graph knows, one module per fact family, for every front end (the CLI, the HTTP API, a
notebook): the same question gets the same JSON from each.

Each family reads its named queries (queries/api/*.rq), whose column names are the JSON names, and
passes the rows through (kg/facts/table.py says how a column becomes a list or a nested object):

- ``codes``: the code format, known codes and the closest ones, the code list and its filters
- ``levels``: vertebrae, spinal regions, and where a code applies
- ``fees``: the fee schedule rows of a code
- ``modifiers``: the modifiers allowed and not allowed on a code
- ``relations``: pairs, bundles and conflicts of a code
- ``sources``: documentation, denial reasons and sources of a code
- ``page``: a code's whole page, assembled from the families; ``text`` renders it for a terminal
"""

from spinekg.kg.facts.table import Facts

__all__ = ["Facts"]
