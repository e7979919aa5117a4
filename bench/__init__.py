"""Benchmarks for meshbot, run against real brokers, fake radios and real Home Assistant."""
