"""Run the OWL reasoner (HermiT, through owlready2) at build time.

HermiT proves the ontology consistent and entails class memberships and object property values
(the property chains of vocab.ttl turn family membership into pairs and exclusions, and region
membership into the codes that apply at each vertebra). owlready2 reports only what is not
already asserted in the same or inverse direction, and only direct types, so ``complete`` adds
back the inverse, symmetric, sub-property and super-class consequences of what HermiT entailed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from rdflib import Graph, URIRef
from rdflib.namespace import OWL, RDF, RDFS
from rdflib.term import Node

from spinekg.kg import paths
from spinekg.kg.errors import SpinekgError
from spinekg.kg.namespaces import shorten

INFERENCES_IRI = "http://inferrences/"  # owlready2's fixed name for the ontology it writes inferences to


class InconsistentOntologyError(SpinekgError):
    """HermiT found the ontology inconsistent; the message lists the axioms that clash."""


@dataclass
class ReasoningResult:
    inferred: Graph
    seconds: float


def java_executable() -> str:
    java = os.environ.get("JAVA_HOME") and str(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    if java and Path(java).is_file():
        return java
    found = shutil.which("java")
    if not found:
        raise SpinekgError(
            "Java was not found: the HermiT reasoner needs a Java runtime (11 or newer) on PATH "
            "(Debian/Ubuntu: apt install default-jre-headless)"
        )
    return found


def hermit_jar() -> Path:
    import owlready2

    return Path(owlready2.__file__).resolve().parent / "hermit" / "HermiT.jar"


def reasoner_input(asserted: Graph) -> Graph:
    """The asserted triples without ontology headers and imports: owlready2 must not fetch imports."""
    headers = set(asserted.subjects(RDF.type, OWL.Ontology))
    graph = Graph()
    for s, p, o in asserted:
        if s not in headers and p != OWL.imports:
            graph.add((s, p, o))
    return graph


def reason(asserted: Graph) -> ReasoningResult:
    """Classify and realise with HermiT; return only the triples HermiT adds to the asserted graph."""
    import owlready2

    owlready2.JAVA_EXE = java_executable()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="spinekg-reason-") as tmp:
        source = Path(tmp) / "asserted.nt"
        reasoner_input(asserted).serialize(source, format="nt", encoding="utf-8")
        world = owlready2.World()
        world.get_ontology(source.as_uri()).load()
        try:
            owlready2.sync_reasoner_hermit(world, infer_property_values=True, debug=0)
        except owlready2.OwlReadyInconsistentOntologyError as exc:
            raise InconsistentOntologyError("the ontology is inconsistent; HermiT's explanation:\n" + explain(source)) from exc
        except owlready2.OwlReadyJavaError as exc:
            lines = [ln for ln in str(exc).splitlines() if ln.strip()]
            raise SpinekgError("HermiT failed: " + " | ".join(lines[:3])) from exc
        out = Path(tmp) / "inferred.nt"
        world.get_ontology(INFERENCES_IRI).save(str(out), format="ntriples")
        raw = Graph().parse(out, format="nt")
        world.close()
    inferred = complete(asserted, raw)
    return ReasoningResult(inferred, time.perf_counter() - started)


def explain(source: Path) -> str:
    """Ask HermiT (through the OWL API black-box explainer) which axioms make the ontology clash."""
    helper = paths.java_dir() / "ExplainInconsistency.java"
    cmd = [java_executable(), "-cp", str(hermit_jar()), str(helper), str(source)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        return "  (the explanation did not finish within 10 minutes)"
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip() and ln.strip() != "INCONSISTENT"]
    if not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return f"  (no explanation: {tail[0]})"
    return "\n".join("  " + _shorten_axiom(ln) for ln in lines)


def _shorten_axiom(axiom: str) -> str:
    out = []
    for token in axiom.replace("<", " <").replace(">", "> ").split():
        out.append(shorten(token[1:-1]) if token.startswith("<") and token.endswith(">") else token)
    return " ".join(out)


def complete(asserted: Graph, raw: Graph) -> Graph:
    """Close HermiT's reported entailments under the ontology's own inverse, symmetric,
    sub-property and sub-class axioms, and keep only what is not asserted."""
    skip_subjects = {URIRef(INFERENCES_IRI), URIRef(INFERENCES_IRI.rstrip("/"))}
    everything = Graph()
    for t in asserted:
        everything.add(t)
    for s, p, o in raw:
        if s in skip_subjects or (p == RDF.type and o in (OWL.Thing, OWL.NamedIndividual)):
            continue
        if p == RDFS.subPropertyOf:  # owlready2 reports these only on some runs; derived below instead
            continue
        everything.add((s, p, o))

    inverse: dict[Node, set[Node]] = defaultdict(set)
    for p, q in asserted.subject_objects(OWL.inverseOf):
        inverse[p].add(q)
        inverse[q].add(p)
    symmetric = set(asserted.subjects(RDF.type, OWL.SymmetricProperty))
    # The property hierarchy: P ⊑ Q entails inv(P) ⊑ inv(Q), and a symmetric property is its own inverse.
    for p in symmetric:
        inverse[p].add(p)
    for p, q in list(asserted.subject_objects(RDFS.subPropertyOf)):
        for p_inv in inverse.get(p, ()):
            for q_inv in inverse.get(q, ()):
                if p_inv != q_inv:
                    everything.add((p_inv, RDFS.subPropertyOf, q_inv))
    super_props = _transitive(asserted, RDFS.subPropertyOf)
    super_classes = _transitive(everything, RDFS.subClassOf, extra_equivalence=True)
    object_props = set(asserted.subjects(RDF.type, OWL.ObjectProperty))

    changed = True
    while changed:
        before = len(everything)
        for s, p, o in list(everything):
            if p == RDF.type and isinstance(o, URIRef):
                for sup in super_classes.get(o, ()):
                    if sup != OWL.Thing:
                        everything.add((s, RDF.type, sup))
            elif p in object_props:
                for q in inverse.get(p, ()):
                    everything.add((o, q, s))
                if p in symmetric:
                    everything.add((o, p, s))
                for q in super_props.get(p, ()):
                    everything.add((s, q, o))
        changed = len(everything) != before

    inferred = Graph()
    for t in everything:
        if t not in asserted:
            inferred.add(t)
    return inferred


def _transitive(graph: Graph, prop: URIRef, extra_equivalence: bool = False) -> dict[Node, set[Node]]:
    """Named super-terms of each named term along ``prop`` (and owl:equivalentClass), transitively."""
    direct: dict[Node, set[Node]] = defaultdict(set)
    for s, o in graph.subject_objects(prop):
        if isinstance(s, URIRef) and isinstance(o, URIRef):
            direct[s].add(o)
    if extra_equivalence:
        for s, o in graph.subject_objects(OWL.equivalentClass):
            if isinstance(s, URIRef) and isinstance(o, URIRef):
                direct[s].add(o)
                direct[o].add(s)
    closed: dict[Node, set[Node]] = {}
    for start in list(direct):
        seen: set[Node] = set()
        stack = list(direct[start])
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(direct.get(node, ()))
        seen.discard(start)
        closed[start] = seen
    return closed
