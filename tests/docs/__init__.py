"""Docs checks: the numbers quoted in README.md and docs/tutorials/*.md come from the commands they show."""
