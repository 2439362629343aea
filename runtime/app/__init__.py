"""The runtime's application, on top of runtime.core: the command line (cli/), classify
locally (classify.py) or on Ray Data (ray/), evaluate, bench, and the host and GPU image
pipelines with their inputs and data sets (images/)."""
