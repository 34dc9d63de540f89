"""Importers that turn CMS data files into ontology modules."""
