"""Everything that touches Prefect; the domain code below it never imports Prefect (see ``tasks/__init__.py``).

Modules here import the real ``prefect`` package: imports are absolute, so this package's own name
does not shadow it.
"""
