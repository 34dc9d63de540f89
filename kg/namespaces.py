"""The one prefix table of the project. Every .rq file and every Turtle module must agree with it
(tests/queries/test_headers.py and tests/ontology/test_prefixes.py check that)."""

BASE = "https://w3id.org/spinekg/"

PREFIXES: dict[str, str] = {
    "skg": BASE + "vocab/",
    "cpt": BASE + "code/cpt/",
    "fam": BASE + "family/",
    "proc": BASE + "procedure/",
    "anat": BASE + "anatomy/",
    "cov": BASE + "coverage/",
    "edit": BASE + "edit/",
    "note": BASE + "note/",
    "doc": BASE + "documentation/",
    "mod": BASE + "modifier/",
    "ind": BASE + "indicator/",
    "pfs": BASE + "pfs/",
    "pos": BASE + "place-of-service/",
    "src": BASE + "source/",
    "mac": BASE + "contractor/",  # Medicare administrative contractors and their contract numbers
    "jur": BASE + "jurisdiction/",  # MAC jurisdictions (JF, J15 ...) and the states each serves
    "state": BASE + "state/",  # US states and territories by USPS code
    "mcd": BASE + "mcd/",  # Medicare Coverage Database documents (LCDs, articles), versions and provisions
    "rule": BASE + "rule/",
    "coding": BASE + "coding/",  # coding rules of spinekg code (ontology/coding.ttl)
    "term": BASE + "term/",  # the note reader's vocabulary (ontology/note-terms.ttl)
    "icd10cm": BASE + "icd10cm/",  # ICD-10-CM codes by their undotted code (icd10cm:M8008XA); kg/icd10
    "owl": "http://www.w3.org/2002/07/owl#",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "dcterms": "http://purl.org/dc/terms/",
}

ONTOLOGY_IRI = BASE + "ontology"
ASSERTED_GRAPH = BASE + "graph/asserted"
INFERRED_GRAPH = BASE + "graph/inferred"
ICD10CM_GRAPH = BASE + "graph/icd10cm"  # the ICD-10-CM code set (kg/icd10): data beside the ontology, not reasoned over
COVERAGE_GRAPH = BASE + "graph/coverage"  # imported Medicare coverage articles (kg/coverage): data beside the ontology


def shorten(iri: str) -> str:
    """Write an IRI as a prefixed name when a prefix of the table matches."""
    best = ""
    for prefix, ns in PREFIXES.items():
        if iri.startswith(ns) and len(ns) > len(PREFIXES.get(best, "")):
            best = prefix
    return f"{best}:{iri[len(PREFIXES[best]) :]}" if best else iri


def expand(name: str) -> str:
    """Expand a prefixed name of the table to a full IRI; full IRIs pass through."""
    prefix, sep, local = name.partition(":")
    if sep and prefix in PREFIXES and not name.startswith(("http://", "https://")):
        return PREFIXES[prefix] + local
    return name
