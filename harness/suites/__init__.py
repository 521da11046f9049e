"""The gate suites, shipped inside the package so any repository runs them without copying files:

    pytest --pyargs harness.suites -m gpu --harness-config my_profile.toml

Each module is a pytest test file driven by the harness plugin's fixtures (``harness.plugin``); in this
repository ``suites/`` is a link to this folder, so ``pytest suites/`` runs the same files.
"""
