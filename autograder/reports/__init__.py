"""Reports: each submission's outcome, feedback and results.json, the class's grades.csv and score table.

Trusted; reads outcomes, never student code. Imported by the CLI and platforms/.
"""
