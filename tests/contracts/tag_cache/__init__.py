"""The TagCache contract and the read-through layer on every TagCache adapter."""
