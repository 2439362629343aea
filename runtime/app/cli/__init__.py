"""`python -m runtime`: the parser (main.py), what each subcommand does (commands.py), the
shared option types and one-line errors (options.py), exit codes (exits.py), SIGTERM
(signals.py) and the repeated-warning summary (log_repeats.py)."""
