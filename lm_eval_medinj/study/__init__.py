"""Study reports: models compared on the same questions, with their statistics."""
