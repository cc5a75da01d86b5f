"""Reports: each submission's outcome, feedback and results.json, the class's grades.csv and score table
(report.py); a class graded in shards, each shard's manifest and the checks before merging (shards.py).

Trusted; reads outcomes, never student code. Imported by the CLI and platforms/.
"""
