"""The study: profiles and run identity, the experiment and its results, the PID tables, the
protocol and the claims, the checks against the committed reference, the figures and tables, the
command line and the notebooks' set-up."""
