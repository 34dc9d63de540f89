"""Medicare coverage as data: the contractors' local coverage determinations (LCDs) and their billing and
coding articles.

What the sources show is typed in ontology/coverage/*.ttl (contractors, jurisdictions and states; the
eight vertebral augmentation LCDs and articles; the provisions known of them, each with its evidence
status). ``spinekg import coverage FILE...`` reads the Medicare Coverage Database article download
(CSV, zipped or not) or Coverage API responses (JSON) into a store of their own (store.py), which the
graph loads beside the typed modules; the claim rules (kg/claims/coverage_kinds.py,
queries/rules/lcd-*.rq) and the questions read both, an imported version superseding the typed facts
of the same article on the dates it covers::

    from spinekg.kg.coverage.importer import import_coverage
    from spinekg.kg.coverage.scope import scope_from_graph
    from spinekg.kg.coverage.store import CoverageStore

    result = import_coverage([Path("current_article_csv.zip")], scope_from_graph(graph))
    print("\\n".join(result.lines()))
    CoverageStore().files()          # the imported versions (N-Triples), loaded at start-up
"""

# No imports here: kg/build.py imports kg.coverage.store while the graph module is still loading, so
# the package stays light; import the submodules (importer, scope, store, reader, tables) directly.
