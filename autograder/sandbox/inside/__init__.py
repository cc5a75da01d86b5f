"""Runs INSIDE the sandbox: every file of this folder is copied to /runner, and beside them only the grader's
matplotlib font list (sandbox/font_list.py); nothing else of the grader is.

These files import only each other (as top-level modules), the standard library and numpy/torch.
The host imports wire.py and syscall_filter.py from here; nothing here imports the host.
"""
