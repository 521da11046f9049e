"""Repository-level pytest configuration: the harness plugin comes from its pytest11 entry
point; this file only adds the fixture modules the harness's own tests use."""

pytest_plugins = ["fixtures.tiny"]
