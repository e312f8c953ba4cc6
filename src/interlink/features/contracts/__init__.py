"""Contracts: JSON Schema per document type, validation at intake, scenario classification."""
