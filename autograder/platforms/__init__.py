"""Platforms: where grades land. The nbgrader gradebook, the Gradescope bundle and results, GitHub Classroom's
template and reporter payloads. Trusted; reads stored outcomes (reports/), never student code. Imported by cli/.
"""
