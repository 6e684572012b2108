"""Typed models of Bosun's resources; the CRD schemas are generated from them."""
