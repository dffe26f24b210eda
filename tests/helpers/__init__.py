"""What the tests share: running learnai as a user does, reading its stores, servers,
ports, databases, processes and polling. Importable as ``helpers`` (pytest's
``pythonpath`` puts ``tests/`` on the path)."""
