"""Source-specific parsing that readers build on: Project Gutenberg books, code trees, secrets.

Pure library code (no datatrove steps here): each module turns bytes or a file tree into plain
Python values, so it can be tested and benchmarked on its own. The stages in ``r1data.stages``
wrap these into documents.
"""
