"""Benchmarks. ``make bench`` runs every ``bench/bench_*.py`` module's ``main()``; each prints a
table of ratios against a baseline measured in the same run and writes it to ``bench/results/``."""
