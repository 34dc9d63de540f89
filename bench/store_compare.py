"""pyoxigraph versus rdflib's in-memory store on the reasoned graph: load time, query latency, memory.

    python bench/store_compare.py [--runs 200] [--scale 20]

--scale N also runs the comparison on N renamed copies of the graph (to see how each store grows)."""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import time

import pyoxigraph as ox
from rdflib import Dataset, URIRef
from rdflib.plugins.sparql import prepareQuery

from spinekg.kg.build import build_graph
from spinekg.kg.queries import get_query

CASES = [
    ("pairs-with", {"code": "22512"}),
    ("codes-at-vertebra", {"procedure": "augmentation", "level": "T12"}),
    ("fee-schedule", {"code": "22511"}),
    ("modifiers-not-allowed", {"code": "22512"}),
]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def lines(scale: int) -> list[str]:
    build = build_graph()
    base = build.asserted_path.read_text().splitlines() + build.inferred_path.read_text().splitlines()
    out = list(base)
    for i in range(1, scale):
        out += [ln.replace("https://w3id.org/spinekg/", f"https://w3id.org/spinekg-copy{i}/") for ln in base]
    return out


def bench(scale: int, runs: int) -> None:
    data = "\n".join(lines(scale)) + "\n"
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    store = ox.Store()
    store.load(input=data.encode(), format=ox.RdfFormat.N_TRIPLES)
    ox_load = time.perf_counter() - started
    ox_mem = rss_mb() - before

    started = time.perf_counter()
    ds = Dataset()
    ds.parse(data=data, format="nt")
    rdf_load = time.perf_counter() - started
    rdf_mem = rss_mb() - before - ox_mem
    print(
        f"\n{len(data.splitlines())} triples: load pyoxigraph {ox_load * 1000:.0f} ms, rdflib {rdf_load * 1000:.0f} ms; "
        f"peak RSS growth pyoxigraph ~{ox_mem:.0f} MB, rdflib ~{max(rdf_mem, 0):.0f} MB"
    )
    for name, params in CASES:
        q = get_query(name)
        binding = {k: v.value for k, v in q.bindings(params).items()}
        oxb = {ox.Variable(k): v for k, v in q.bindings(params).items()}
        prepared = prepareQuery(q.text)
        from rdflib import Literal

        rb = {k: Literal(v) for k, v in binding.items()}
        t_ox, t_rdf = [], []
        n_ox = n_rdf = 0
        for _ in range(runs):
            s = time.perf_counter()
            n_ox = len(list(store.query(q.text, substitutions=oxb)))
            t_ox.append(time.perf_counter() - s)
        for _ in range(max(5, runs // 20)):
            s = time.perf_counter()
            n_rdf = len(list(ds.query(prepared, initBindings=rb)))
            t_rdf.append(time.perf_counter() - s)
        print(
            f"  {name:<22} pyoxigraph p50 {statistics.median(t_ox) * 1000:7.2f} ms ({n_ox} rows) | "
            f"rdflib prepared p50 {statistics.median(t_rdf) * 1000:8.2f} ms ({n_rdf} rows) | "
            f"ratio {statistics.median(t_rdf) / statistics.median(t_ox):.0f}x"
        )
    del ds, store
    _ = URIRef


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--scale", type=int, default=20)
    args = parser.parse_args()
    bench(1, args.runs)
    if args.scale > 1:
        bench(args.scale, args.runs // 4)


if __name__ == "__main__":
    main()
