"""Exercise 4's text-to-image pipeline: loading and recording (sd_pipeline.py), the CPU stand-in (stand_in.py),
and one server that shares it between workers (server.py). Trusted; imported by the checks and the CLI.
"""
