"""The wall: the host side that starts, confines and talks to the sandbox (host.py, cgroups, uid confinement,
CPU share); inside/ holds exactly the files mounted into it. Imported by grading and the CLI, never by inside/.
"""
