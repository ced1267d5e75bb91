"""HTTP concerns shared by the blueprints: negotiation, conditional requests, problems."""
