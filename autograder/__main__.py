import gc

from autograder.cli import main

status = main()
# What is left goes with the process: the interpreter's last garbage collection, over every object of the
# libraries a command imported (the class report's matplotlib, scipy and copydetect), took 0.2 s.
gc.freeze()
raise SystemExit(status)
